"""Shared fixtures of the viewer tests: a fake recording, isolated QSettings, a leak check.

Other viewer test modules append their fixtures at the end of this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from sleeplm_core.io.annotations import Annotation, Annotations


@dataclass(frozen=True)
class FakeChannel:
    name: str
    type: str
    sf: float
    unit: str


@dataclass(frozen=True)
class FakeWindow:
    data: np.ndarray
    sf: float
    ch_names: list[str]
    units: list[str]
    start_s: float


@dataclass
class FakeRecording:
    """A deterministic recording computed on demand (no file): the ``Recording`` protocol.

    Channels: C4-M1 (10 Hz alpha + slow wave), E1-M2, Chin, ECG, Flow, SpO2 (%), Flat
    (constant) and Dead (all NaN). One EDF+D gap at 600-630 s.
    """

    duration_s: float = 3600.0
    sf: float = 128.0
    path: Path = Path("/fake/night.edf")
    start: datetime = datetime(2024, 3, 1, 22, 14, 7, 250000)
    gaps: list[tuple[float, float]] = field(default_factory=lambda: [(600.0, 30.0)])
    annotations: Annotations = field(default_factory=Annotations)
    hypnogram: object = None
    derivations: dict[str, tuple[str, str]] = field(default_factory=dict)
    n_reads: int = 0

    def __post_init__(self) -> None:
        spec = [
            ("C4-M1", "EEG", "uV"), ("E1-M2", "EOG", "uV"), ("Chin", "EMG", "uV"),
            ("ECG", "ECG", "uV"), ("Flow", "AIRFLOW", ""), ("SpO2", "SPO2", "%"),
            ("Flat", "EEG", "uV"), ("Dead", "OTHER", "uV"),
        ]
        self.channels = [FakeChannel(n, t, self.sf, u) for n, t, u in spec]

    @property
    def ch_names(self) -> list[str]:
        return [c.name for c in self.channels]

    def _signal(self, name: str, t: np.ndarray) -> np.ndarray:
        if name in self.derivations:
            pos, ref = self.derivations[name]
            return self._signal(pos, t) - self._signal(ref, t)
        k = self.ch_names.index(name)
        if name == "Flat":
            return np.full_like(t, 12.5)
        if name == "Dead":
            return np.full_like(t, np.nan)
        if name == "SpO2":
            return 95.0 + 2.0 * np.sin(2 * np.pi * t / 600.0)
        if name == "Flow":
            return 0.4 * np.sin(2 * np.pi * 0.25 * t)
        base = 40.0 * np.sin(2 * np.pi * (1.0 + k) * t) + 20.0 * np.sin(2 * np.pi * 10.0 * t)
        return base + 25.0 * np.sin(2 * np.pi * 0.05 * t) + 50.0  # DC offset for the filters

    def window(self, start_s: float, stop_s: float, ch_names=None) -> FakeWindow:
        self.n_reads += 1
        names = list(ch_names) if ch_names is not None else self.ch_names
        i0 = int(round(max(start_s, 0.0) * self.sf))
        i1 = int(round(min(stop_s, self.duration_s) * self.sf))
        t = np.arange(i0, i1) / self.sf
        data = np.stack([self._signal(n, t) for n in names]).astype(np.float32)
        for onset, dur in self.gaps:
            data[:, (t >= onset) & (t < onset + dur)] = np.nan
        units = [self._unit(n) for n in names]
        return FakeWindow(data, self.sf, names, units, i0 / self.sf)

    def _unit(self, name: str) -> str:
        if name in self.derivations:
            return self._unit(self.derivations[name][0])
        return self.channels[self.ch_names.index(name)].unit

    def add_derivation(self, name: str, positive: str, reference: str) -> None:
        self.derivations[name] = (positive, reference)
        pos = self.channels[self.ch_names.index(positive)]
        self.channels.append(FakeChannel(name, pos.type, pos.sf, pos.unit))


@pytest.fixture
def fake_recording() -> FakeRecording:
    """A one-hour fake recording with a gap, a flat and an all-NaN channel."""
    ann = Annotations([
        Annotation(30.0 * i, 30.0, "Sleep stage N2") for i in range(120)
    ] + [Annotation(95.0, 12.0, "Obstructive apnea")])
    return FakeRecording(annotations=ann)


@pytest.fixture
def isolated_settings(tmp_path, monkeypatch):
    """Point QSettings (INI format) at a temporary directory for one test."""
    from PyQt6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(tmp_path / "settings"))
    yield tmp_path / "settings"


@pytest.fixture
def no_leaked_windows(request, qapp):
    """Fail a passing test that leaves a ``MainWindow`` alive after it closed."""
    from sleepviewer.widgets.main_window import MainWindow

    yield
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        return
    qapp.processEvents()
    windows = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)]
    alive = [w for w in windows if w.isVisible()]
    assert not alive, f"{len(alive)} MainWindow(s) still open after the test"
    from PyQt6.QtCore import QThread

    running = [t for w in windows for t in w.findChildren(QThread) if t.isRunning()]
    assert not running, f"threads still running after close: {running}"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def error_log() -> list[str]:
    """A list that collects the one-line errors a MainWindow would show in a dialog."""
    return []


@pytest.fixture
def make_window(qtbot, isolated_settings, error_log, no_leaked_windows):
    """A factory of shown 1300 x 800 MainWindows (no spectrogram, overview in the foreground),
    each closed after the test."""
    from PyQt6.QtCore import QSettings

    from sleepviewer.widgets.main_window import MainWindow

    windows = []

    def make() -> MainWindow:
        settings = QSettings(str(isolated_settings / "viewer.ini"), QSettings.Format.IniFormat)
        w = MainWindow(settings=settings, report_error=error_log.append)
        w.spectrogram_enabled = False
        w.overview_in_background = False
        qtbot.addWidget(w)
        w.resize(1300, 800)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


# -- annotations, scoring, hypnogram (test_annotation_store / _dock / test_hypnogram_view) ------
@pytest.fixture
def many_events() -> list[Annotation]:
    """10,000 deterministic events over an 8-hour night (four labels, some on a channel)."""
    rng = np.random.default_rng(7)
    labels = ["Obstructive apnea", "Hypopnea", "Arousal", "Oxygen desaturation"]
    onsets = np.sort(rng.uniform(0.0, 8 * 3600.0 - 60.0, 10_000))
    durations = rng.uniform(3.0, 40.0, 10_000)
    picks = rng.integers(0, len(labels), 10_000)
    channel = {"Oxygen desaturation": "SpO2"}
    return [
        Annotation(float(o), float(d), labels[p], channel.get(labels[p]))
        for o, d, p in zip(onsets, durations, picks, strict=True)
    ]


@pytest.fixture
def night_store(tmp_path, qapp):
    """A store over a one-hour night: epochs 0-9 wake, 10-59 N2, a few events; sidecar in
    ``tmp_path/rec``, fallback folder ``tmp_path/appdata``, autosave after 20 ms."""
    from sleepviewer.annotation_store import AnnotationStore, sidecar_path_for

    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    rec = rec_dir / "night.edf"
    rec.write_bytes(b"0       EDF bytes that must never change")
    items = [Annotation(0.0, 300.0, "Sleep stage W"), Annotation(300.0, 1500.0, "Sleep stage N2")]
    items += [
        Annotation(95.0, 12.0, "Obstructive apnea"),
        Annotation(400.0, 15.0, "Hypopnea"),
        Annotation(410.0, 20.0, "Oxygen desaturation", "SpO2", (("spo2_nadir", "88"),)),
        Annotation(1200.0, 8.0, "Arousal", "C4-M1"),
    ]
    store = AnnotationStore(
        items,
        duration_s=3600.0,
        sidecar_path=sidecar_path_for(rec),
        fallback_dir=tmp_path / "appdata",
        recording_path=rec,
        autosave_ms=20,
    )
    yield store
    store.deleteLater()


@pytest.fixture
def drag_event():
    """Factory of stand-ins for pyqtgraph's ``MouseDragEvent`` (item coordinates)."""
    from PyQt6.QtCore import QPointF, Qt

    class FakeDragEvent:
        def __init__(self, down, now, *, start=False, finish=False,
                     modifiers=Qt.KeyboardModifier.NoModifier,
                     button=Qt.MouseButton.LeftButton):
            self._down, self._now = QPointF(*down), QPointF(*now)
            self._start, self._finish = start, finish
            self._modifiers, self._button = modifiers, button
            self.accepted = None

        def button(self):
            return self._button

        def modifiers(self):
            return self._modifiers

        def isStart(self):  # noqa: N802
            return self._start

        def isFinish(self):  # noqa: N802
            return self._finish

        def buttonDownPos(self):  # noqa: N802
            return self._down

        def pos(self):
            return self._now

        def accept(self):
            self.accepted = True

        def ignore(self):
            self.accepted = False

    return FakeDragEvent


@pytest.fixture(scope="session")
def small_edf(tmp_path_factory) -> Path:
    """A 10-min EDF+ written by the project's writer: referential electrodes (so presets must
    derive F4-M1, ...), mixed rates (SpO2 at 1 Hz), a sub-second start and a few annotations."""
    from sleeplm_core.io.edf_writer import SignalSpec, write_edf

    sf, dur = 128.0, 600.0
    t = np.arange(int(sf * dur)) / sf
    rng = np.random.default_rng(0)

    def eeg(k: int) -> np.ndarray:
        return 30 * np.sin(2 * np.pi * (1.5 + k) * t) + rng.normal(0, 5, t.size)

    signals = [SignalSpec(n, "EEG", sf, "uV", eeg(k)) for k, n in enumerate(["F4", "C4", "O2"])]
    signals += [
        SignalSpec("M1", "EEG", sf, "uV", rng.normal(0, 2, t.size)),
        SignalSpec("M2", "EEG", sf, "uV", rng.normal(0, 2, t.size)),
        SignalSpec("E1", "EOG", sf, "uV", 50 * np.sin(2 * np.pi * 0.3 * t)),
        SignalSpec("E2", "EOG", sf, "uV", -50 * np.sin(2 * np.pi * 0.3 * t)),
        SignalSpec("Chin", "EMG", sf, "uV", rng.normal(0, 5, t.size)),
        SignalSpec("ECG", "ECG", sf, "uV", 500 * (np.sin(2 * np.pi * 1.1 * t) > 0.98)),
        SignalSpec("SpO2", "SPO2", 1.0, "%", 95 + np.sin(2 * np.pi * np.arange(600) / 120)),
    ]
    ann = [Annotation(30.0 * i, 30.0, "Sleep stage N2") for i in range(20)]
    ann.append(Annotation(95.0, 12.0, "Obstructive apnea"))
    path = tmp_path_factory.mktemp("edf") / "small.edf"
    write_edf(path, signals, ann, start=datetime(2024, 3, 1, 22, 14, 7, 250000))
    return path


@pytest.fixture
def bad_edf(tmp_path) -> Path:
    """A file with an .edf name that is not an EDF."""
    path = tmp_path / "broken.edf"
    path.write_bytes(b"this is not an EDF header" * 20)
    return path


@pytest.fixture
def slow_recording(fake_recording):
    """The fake recording, but every ``window`` read takes 30 ms (to cancel a worker mid-way)."""
    import time

    class SlowRecording:
        channels = fake_recording.channels
        reads = 0

        def window(self, start_s, stop_s, ch_names=None):
            type(self).reads += 1
            time.sleep(0.03)
            return fake_recording.window(start_s, stop_s, ch_names)

    return SlowRecording()


# -- language: fake Predictor, worker host (test_workers / test_query_widgets / caption panel) --
class InferenceCancelled(Exception):
    """Same name as ``sleeplm_core.inference.InferenceCancelled`` (no torch import here)."""


class FakePredictor:
    """The ``Predictor`` protocol without torch: deterministic embeddings, stages, matches
    and captions. ``chunk_delay_s`` makes ``embed_recording`` slow (it sleeps per chunk and
    polls ``should_stop``); ``fail_with`` makes every call raise that exception."""

    model_id = "fake@0"
    threshold = 0.35

    def __init__(self, n_chunks: int = 4, chunk_delay_s: float = 0.0, fail_with=None):
        self.n_chunks = n_chunks
        self.chunk_delay_s = chunk_delay_s
        self.fail_with = fail_with
        self.calls: list[str] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_with is not None:
            raise self.fail_with

    def embed_recording(self, rec, *, stride_s=10.0, use_cache=True, progress=None,
                        should_stop=None):
        import time

        from sleeplm_core.results import NightEmbeddings

        self._maybe_fail("embed_recording")
        onsets = np.arange(0.0, rec.duration_s - 30.0 + 1e-9, stride_s)
        bounds = np.linspace(0, len(onsets), self.n_chunks + 1).astype(int)
        for k in range(self.n_chunks):
            if should_stop is not None and should_stop():
                raise InferenceCancelled
            time.sleep(self.chunk_delay_s)
            if progress is not None:
                progress(int(bounds[k + 1]), len(onsets))
        emb = np.random.default_rng(0).normal(size=(len(onsets), 8)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        return NightEmbeddings(onsets, 30.0, emb, np.ones(12, bool), self.model_id)

    def stage(self, emb, channels_used=()):
        from sleeplm_core.results import EpochStage, StageResult

        self._maybe_fail("stage")
        order = ("W", "N1", "N2", "N3", "REM")
        grid = [float(t) for t in emb.onsets_s if t % 30.0 == 0.0]
        epochs = []
        for t in grid:
            e = int(t // 30)
            st = order[(e // 10) % 5]
            epochs.append(EpochStage(e, t, st, 0.8, {s: (0.8 if s == st else 0.05) for s in order}))
        return StageResult(epochs, list(channels_used), self.model_id)

    def search(self, emb, query, *, top=10, min_score=None):
        from sleeplm_core.errors import SleepLMError
        from sleeplm_core.results import SearchResult, Segment

        self._maybe_fail("search")
        if not query.strip():
            raise SleepLMError(None, "the query is empty: type what to look for")
        thr = self.threshold if min_score is None else min_score
        if "nothing" in query:
            return SearchResult(query, [], thr, [0.31, 0.29, 0.27, 0.22, 0.2])
        found = [
            Segment(95.0, 12.0, 0.82, ["AIRFLOW", "SPO2"]),
            Segment(1300.0, 20.0, 0.71, ["AIRFLOW", "SPO2"]),
            Segment(2500.0, 45.0, 0.60, ["AIRFLOW"]),
            Segment(3300.0, 8.0, 0.52, ["EEG"]),
        ]
        return SearchResult(query, found[:top], thr, [0.82, 0.71, 0.6, 0.52, 0.3])

    def caption(self, rec, start_s, stop_s, *, modalities=None, prompt=None, beam=3):
        from sleeplm_core.results import Caption

        self._maybe_fail("caption")
        first = int(start_s // 30)
        last = max(first, int(np.ceil(min(stop_s, rec.duration_s) / 30.0)) - 1)
        mods = list(modalities) if modalities else ["stage_event", "brain", "respiratory"]
        text = {
            "stage_event": "Stage N2 sleep with a sleep spindle.",
            "brain": "Sigma activity with spindles over a theta background.",
            "heart": "Regular heart rhythm around 62 bpm.",
            "respiratory": "Flow drops for about 12 s with a desaturation to 88%.",
            "somatic": "Low chin tone, no leg movements.",
        }
        out = []
        for e in range(first, last + 1):
            for m in mods:
                t = f"Breathing in epoch {e + 1} is regular at 15 breaths/min." if prompt else (
                    text.get(m, "Something."))
                out.append(Caption(e * 30.0, 30.0, "epoch", m, t))
        return out


class FakeCanonicalRecording(FakeRecording):
    """``FakeRecording`` plus ``canonical()`` (12 slots at 64 Hz) and ``close()``."""

    closed: bool = False

    def canonical(self, start_s, stop_s):
        from types import SimpleNamespace

        sf = 64.0
        t = np.arange(int(round(max(start_s, 0.0) * sf)), int(round(min(stop_s, self.duration_s)
                                                                     * sf))) / sf
        data = np.zeros((12, t.size), np.float32)
        data[6] = 30 * np.sin(2 * np.pi * 1.5 * t) + 8 * np.sin(2 * np.pi * 12.5 * t)  # C3_M2
        data[7] = data[6]
        data[0] = 400 * (np.sin(2 * np.pi * 1.05 * t) > 0.97)  # ECG
        data[3] = 0.4 * np.sin(2 * np.pi * 0.25 * t)  # AIRFLOW
        data[10] = 95.0 + np.sin(2 * np.pi * t / 600.0)  # SPO2
        mask = np.zeros(12, bool)
        mask[[0, 3, 6, 7, 10]] = True
        sources = tuple("x" if m else None for m in mask)
        return SimpleNamespace(data=data, mask=mask, sources=sources)

    @property
    def canonical_sources(self):
        return ("ECG", None, None, "Flow", None, None, "C4-M1", "C4-M1", None, None, "SpO2", None)

    def channels_used(self, mask=None):
        from sleeplm_core.io.recording import Recording

        return Recording.channels_used(self, mask)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_predictor() -> FakePredictor:
    """A fast fake Predictor (4 chunks, no delay)."""
    return FakePredictor()


@pytest.fixture
def fake_opener():
    """``(path) -> FakeCanonicalRecording`` for the worker; remembers what it opened."""
    opened: list = []

    def opener(path):
        rec = FakeCanonicalRecording(path=Path(path), annotations=Annotations(
            [Annotation(95.0, 12.0, "Obstructive apnea")]))
        opened.append(rec)
        return rec

    opener.opened = opened
    return opener


@pytest.fixture
def worker_host(qapp, fake_predictor, fake_opener):
    """A ``WorkerHost`` over the fake predictor; closed after the test."""
    from sleepviewer.workers import WorkerHost

    host = WorkerHost(lambda: fake_predictor, fake_opener)
    yield host
    host.close()
    host.deleteLater()
