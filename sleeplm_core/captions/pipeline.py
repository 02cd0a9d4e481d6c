"""Caption a whole night at every level: epoch (per modality), segment and night.

Usage::

    from sleeplm_core.captions.pipeline import caption_night, epoch_mask
    feats = night_features(data, mask)             # optional: computed when not given
    out = caption_night(data, epoch_mask(data, mask), annotations, stages,
                        stats=hypnogram.sleep_statistics(), indices=event_indices(...), seed=0)
    out.epochs[120]["heart"].text
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
from numpy.typing import NDArray

from sleeplm_core.captions import epoch as ep
from sleeplm_core.captions.events import epoch_events, link_consequences
from sleeplm_core.captions.facts import Caption
from sleeplm_core.captions.features import SLOT, EpochFeatures, night_features
from sleeplm_core.captions.levels import (
    SEGMENT_EPOCHS,
    night_caption,
    segment_caption,
    sleep_cycles,
)
from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.channels import CANONICAL_SF
from sleeplm_core.io.indices import plm_series
from sleeplm_core.stages import EPOCH_S


@dataclass(frozen=True, slots=True)
class NightCaptions:
    """All captions of one night.

    Attributes
    ----------
    epochs : list of dict
        Per epoch, ``{modality: Caption}`` for the modalities that have a caption.
    segments : list of Caption
        One per run of ``segment_epochs`` epochs (the last one may be shorter).
    segment_epochs : int
        Epochs per segment.
    night : Caption or None
        The clinical summary (``None`` without a hypnogram).
    features : list of dict
        The signal features each epoch caption was built from.
    """

    epochs: list[dict[str, Caption]]
    segments: list[Caption]
    segment_epochs: int
    night: Caption | None
    features: list[EpochFeatures]


def epoch_mask(
    data: NDArray[np.floating], mask: NDArray[np.bool_], sf: float = CANONICAL_SF
) -> NDArray[np.bool_]:
    """Per-epoch channel mask: a present slot counts as absent where it is all zeros.

    Canonical windows hold zeros in EDF+D gaps and where a channel is missing. POSITION is
    exempt: a constant code 0 is a valid body position.

    Parameters
    ----------
    data : ndarray, shape (12, n_samples)
        The canonical night.
    mask : ndarray of bool, shape (12,)
        Slots with a source channel.
    sf : float
        Sampling rate in Hz.

    Returns
    -------
    ndarray of bool, shape (n_epochs, 12)
    """
    spe = int(round(EPOCH_S * sf))
    n_epochs = data.shape[1] // spe
    epochs = data[:, : n_epochs * spe].reshape(data.shape[0], n_epochs, spe)
    live = np.any(epochs != 0, axis=2)
    live[SLOT["POSITION"]] = True
    out: NDArray[np.bool_] = (live & mask[:, None]).T.copy()  # np.any(axis=...) is typed Any
    return out


def caption_night(
    data: NDArray[np.floating],
    mask: NDArray[np.bool_],
    annotations: Sequence[Annotation],
    stages: Sequence[str] | None,
    *,
    stats: Mapping[str, float] | None = None,
    indices: Mapping[str, float] | None = None,
    seed: int = 0,
    sf: float = CANONICAL_SF,
    segment_epochs: int = SEGMENT_EPOCHS,
    features: list[EpochFeatures] | None = None,
    sources: Sequence[str | None] | None = None,
) -> NightCaptions:
    """Write every caption of a night.

    Parameters
    ----------
    data : ndarray, shape (12, n_samples)
        The canonical night at ``sf`` Hz, physical units.
    mask : ndarray of bool, shape (n_epochs, 12) or (12,)
        Which slots hold signal (per epoch, see :func:`epoch_mask`).
    annotations : sequence of annotations
        The recording's annotations, ordered by onset (stage annotations are ignored).
    stages : sequence of str or None
        YASA stage per epoch; ``None`` when the night is unscored.
    stats : mapping, optional
        Hypnogram statistics for the night caption.
    indices : mapping, optional
        Event indices for the night caption.
    seed : int
        Seeds paraphrase and rounding choices; the same inputs and seed give the same text.
    sf : float
        Sampling rate of ``data``.
    segment_epochs : int
        Epochs per segment caption.
    features : list of dict, optional
        Precomputed :func:`night_features`.
    sources : sequence of str or None, optional
        The file channel behind each canonical slot; EEG sites are named after it.

    Returns
    -------
    NightCaptions
    """
    if features is not None:
        feats = features
    else:
        # any(axis=0) of a 2-D mask is an array; the stubs also allow a numpy.bool scalar
        slots = cast(NDArray[np.bool_], mask.any(axis=0)) if mask.ndim == 2 else mask
        feats = night_features(data, slots, sf)
    n_epochs = len(feats)
    masks = mask if mask.ndim == 2 else np.broadcast_to(mask, (n_epochs, mask.size))
    rng = np.random.default_rng(seed)
    anns = list(annotations)  # fact sources index this list; stage labels are never events
    links = link_consequences(anns)
    longest = max((a.duration_s for a in anns), default=0.0)
    spo2 = np.asarray(data[SLOT["SPO2"]], np.float64) if masks[:, SLOT["SPO2"]].any() else None
    scored = list(stages) if stages is not None else None
    epochs: list[dict[str, Caption]] = []
    for e in range(n_epochs):
        m = masks[e]
        f = feats[e]
        caps: dict[str, Caption | None] = {}
        present = ep.present_modalities(m)
        if "brain" in present:
            caps["brain"] = ep.brain_caption(f, m, rng, sources)
        if "heart" in present:
            caps["heart"] = ep.heart_caption(f, rng)
        if "respiratory" in present:
            caps["respiratory"] = ep.respiratory_caption(f, m, rng)
        if "somatic" in present:
            caps["somatic"] = ep.somatic_caption(f, m, rng)
        stage = scored[e] if scored is not None and e < len(scored) else None
        events, counts = epoch_events(anns, links, e * EPOCH_S, (e + 1) * EPOCH_S, longest)
        if stage is not None or events or counts:
            caps["stage_event"] = ep.stage_event_caption(stage, events, counts, anns, spo2, sf, rng)
        epochs.append({k: v for k, v in caps.items() if v is not None})
    segments: list[Caption] = []
    night: Caption | None = None
    if scored is not None:
        padded = (scored + ["UNS"] * n_epochs)[:n_epochs]
        cycles = sleep_cycles(padded)
        plm = plm_series(anns)
        for first in range(0, n_epochs, segment_epochs):
            chunk = padded[first : first + segment_epochs]
            segments.append(segment_caption(chunk, first, anns, cycles, plm, rng))
        night = night_caption(stats, indices, len(cycles), rng)
    return NightCaptions(epochs, segments, segment_epochs, night, feats)
