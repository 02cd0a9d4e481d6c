"""A small in-memory dataset of synthetic epochs with template captions.

It lets the trainer and its tests run without shards, the EDF reader or the caption renderer.
The signals are cheap but not random: each epoch's EEG, EOG and EMG follow its sleep stage
(alpha in W, spindles in N2, delta in N3, rapid eye movements and atonia in REM), ECG beats at
the night's heart rate, effort and airflow breathe at its respiratory rate and stop during
apneas (with an SpO2 dip). Captions describe exactly these facts, so the model has something
to learn. Samples have the same dict layout as ``ShardDataset`` (physical units, see
:mod:`sleeplm_core.train.collate`).

Every item is a pure function of ``(seed, index)``; nothing is stored but the hypnograms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from sleeplm_core.model.config import EPOCH_SAMPLES, N_CHANNELS
from sleeplm_core.stages import STAGE_TO_INT

SF = 64.0
SLOTS = ("ECG", "ABD", "THX", "AIRFLOW", "EOG_L", "EOG_R", "C3_M2", "C4_M1", "EMG_CHIN",
         "POSITION", "SPO2", "EMG_LEG")  # fmt: skip
_IDX = {name: i for i, name in enumerate(SLOTS)}
_STAGES = ("W", "N1", "N2", "N3", "REM")
_BRAIN = {
    "W": "wake with posterior alpha rhythm",
    "N1": "stage N1 with theta activity and slow eye movements",
    "N2": "stage N2 with sleep spindles and k complexes",
    "N3": "stage N3 with high amplitude delta waves",
    "REM": "REM sleep with sawtooth theta and rapid eye movements",
}
_TONE = {"W": "high", "N1": "normal", "N2": "normal", "N3": "low", "REM": "absent"}
_POSITIONS = ("supine", "left", "right", "prone")
# Markov transitions between W N1 N2 N3 REM (rows sum to 1), a crude adult night.
_TRANSITIONS = np.array(
    [
        [0.80, 0.15, 0.05, 0.00, 0.00],
        [0.10, 0.50, 0.35, 0.00, 0.05],
        [0.03, 0.05, 0.80, 0.08, 0.04],
        [0.02, 0.00, 0.13, 0.85, 0.00],
        [0.05, 0.05, 0.05, 0.00, 0.85],
    ]
)


class SyntheticEpochs(Dataset[dict[str, Any]]):
    """``n_nights`` synthetic nights of ``epochs_per_night`` 30-s epochs each.

    Parameters
    ----------
    n_nights : int
        Number of nights (subjects).
    epochs_per_night : int
        Epochs per night.
    seed : int
        Master seed; the same seed gives the same data.
    channel_dropout : float
        Probability of dropping each present channel of an epoch (at least one stays).
    """

    def __init__(
        self,
        n_nights: int,
        *,
        epochs_per_night: int = 60,
        seed: int = 0,
        channel_dropout: float = 0.0,
    ) -> None:
        self.n_nights = n_nights
        self.epochs_per_night = epochs_per_night
        self.seed = seed
        self.channel_dropout = channel_dropout
        self.nights = [self._night(n) for n in range(n_nights)]

    def _night(self, n: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, n, 0])
        stages = [0]
        for _ in range(self.epochs_per_night - 1):
            stages.append(int(rng.choice(5, p=_TRANSITIONS[stages[-1]])))
        present = np.ones(N_CHANNELS, dtype=bool)
        for slot, p_missing in (("SPO2", 0.2), ("EMG_LEG", 0.3), ("EOG_R", 0.1), ("POSITION", 0.1)):
            present[_IDX[slot]] = rng.random() >= p_missing
        return {
            "stages": stages,
            "hr_bpm": int(rng.integers(11, 17) * 5),  # 55..80
            "rr_per_min": int(rng.integers(12, 19)),
            "position": _POSITIONS[int(rng.integers(len(_POSITIONS)))],
            "apnea_rate": float(rng.uniform(0.0, 0.4)),
            "present": present,
        }

    def __len__(self) -> int:
        return self.n_nights * self.epochs_per_night

    def describe(self) -> dict[str, Any]:
        """Provenance for checkpoint metadata."""
        return {
            "kind": "synthetic",
            "n_nights": self.n_nights,
            "epochs_per_night": self.epochs_per_night,
            "seed": self.seed,
            "channel_dropout": self.channel_dropout,
        }

    def facts(self, index: int) -> dict[str, Any]:
        """The ground truth of one epoch: stage, rates, position, apnea."""
        night = self.nights[index // self.epochs_per_night]
        k = index % self.epochs_per_night
        rng = np.random.default_rng([self.seed, index, 1])
        stage = _STAGES[night["stages"][k]]
        apnea = stage != "W" and rng.random() < night["apnea_rate"]
        return {"stage": stage, "apnea": bool(apnea), **{key: night[key] for key in
                ("hr_bpm", "rr_per_min", "position", "present")}}  # fmt: skip

    def captions(self, index: int) -> dict[str, str]:
        """Template captions of one epoch, one per modality."""
        f = self.facts(index)
        resp = (
            "an obstructive apnea with airflow cessation" if f["apnea"] else "no respiratory events"
        )
        return {
            "brain": _BRAIN[f["stage"]],
            "heart": f"heart rate about {f['hr_bpm']} bpm with regular rhythm",
            "respiratory": f"breathing at {f['rr_per_min']} per minute, {resp}",
            "somatic": f"{f['position']} position, chin muscle tone {_TONE[f['stage']]}",
            "stage_event": f"stage {f['stage']}" + (", apnea" if f["apnea"] else ", no events"),
        }

    def caption_corpus(self) -> list[str]:
        """Every caption of the dataset (for the vocabulary and the text-embedding cache)."""
        return [c for i in range(len(self)) for c in self.captions(i).values()]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        f = self.facts(index)
        rng = np.random.default_rng([self.seed, index, 2])
        t = np.arange(EPOCH_SAMPLES) / SF
        x = np.zeros((N_CHANNELS, EPOCH_SAMPLES), dtype=np.float64)
        stage = f["stage"]

        def noise(scale: float) -> np.ndarray:
            return rng.normal(0.0, scale, EPOCH_SAMPLES)

        eeg = {
            "W": 20 * np.sin(2 * np.pi * 10 * t),
            "N1": 20 * np.sin(2 * np.pi * 6 * t),
            "N2": 15 * np.sin(2 * np.pi * 5 * t),
            "N3": 80 * np.sin(2 * np.pi * 1.0 * t + rng.uniform(0, 6.28)),
            "REM": 15 * ((t * 3) % 1.0 - 0.5) * 2,
        }[stage]
        if stage == "N2":  # two spindles of 1 s at 13 Hz
            for onset in rng.uniform(0, 28, 2):
                win = np.exp(-(((t - onset - 0.5) / 0.25) ** 2))
                eeg = eeg + 30 * win * np.sin(2 * np.pi * 13 * t)
        x[_IDX["C3_M2"]] = eeg + noise(8)
        x[_IDX["C4_M1"]] = eeg + noise(8)
        eye = np.zeros_like(t)
        if stage == "REM":
            for onset in rng.uniform(0, 29, 6):
                eye += 100 * np.tanh((t - onset) * 20) * (np.abs(t - onset) < 0.6)
        elif stage in ("W", "N1"):
            eye = 40 * np.sin(2 * np.pi * 0.2 * t)
        x[_IDX["EOG_L"]] = eye + noise(5)
        x[_IDX["EOG_R"]] = -eye + noise(5)
        tone = {"W": 20.0, "N1": 10.0, "N2": 8.0, "N3": 6.0, "REM": 1.5}[stage]
        x[_IDX["EMG_CHIN"]] = noise(tone)
        beat = 60.0 / f["hr_bpm"]
        phase = (t + rng.uniform(0, beat)) % beat
        x[_IDX["ECG"]] = 1.0 * np.exp(-(((phase - beat / 2) / 0.02) ** 2)) + noise(0.03)
        breath = np.sin(2 * np.pi * f["rr_per_min"] / 60.0 * t + rng.uniform(0, 6.28))
        flow = breath.copy()
        spo2 = 96.0 + noise(0.2)
        if f["apnea"]:
            start = rng.uniform(0, 12)
            during = (t > start) & (t < start + 15)
            flow[during] *= 0.05
            spo2 = spo2 - 5.0 * np.clip((t - start - 10) / 10, 0, 1)
        x[_IDX["ABD"]] = 200 * breath + noise(10)
        x[_IDX["THX"]] = 150 * breath + noise(10)
        x[_IDX["AIRFLOW"]] = 100 * flow + noise(5)
        x[_IDX["SPO2"]] = spo2
        x[_IDX["POSITION"]] = float(_POSITIONS.index(f["position"]))
        x[_IDX["EMG_LEG"]] = noise(5)
        mask = f["present"].copy()
        if self.channel_dropout > 0:
            drop = rng.random(N_CHANNELS) < self.channel_dropout
            if (mask & ~drop).any():
                mask &= ~drop
        x[~mask] = 0.0
        return {
            "signal": x.astype(np.float32),
            "mask": mask,
            "stage": STAGE_TO_INT[stage],
            "captions": self.captions(index),
        }
