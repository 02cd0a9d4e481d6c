"""The model worker: requests in a QThread against a fake Predictor (no torch)."""

from __future__ import annotations

import gc
import time

import pytest
from PyQt6.QtCore import QObject, QThread, QTimer

from sleeplm_core.errors import CheckpointError
from sleeplm_core.io.annotations import Annotation
from sleepviewer.query import parse_query
from sleepviewer.workers import (
    CaptionResponse,
    EmbedNightResponse,
    EtaClock,
    Failure,
    ReferenceCaptionsResponse,
    SearchResponse,
    StageResponse,
    WorkerHost,
    eta_text,
    one_line,
    weak_slot,
)

from .conftest import FakePredictor


def embed(qtbot, host, path="/fake/night.edf", timeout=5000):
    """Embed ``path`` and return the response (a failure fails the test with its message)."""
    got: list = []
    failures: list[str] = []
    host.finished.connect(got.append)
    host.failed.connect(failures.append)
    host.embed_night(path)
    qtbot.waitUntil(lambda: bool(got or failures), timeout=timeout)
    host.finished.disconnect(got.append)
    host.failed.disconnect(failures.append)
    assert not failures, failures
    assert isinstance(got[0], EmbedNightResponse)
    return got[0]


@pytest.fixture
def slow_host(qapp, fake_opener):
    """A host whose fake night takes 20 chunks of 50 ms to embed."""
    pred = FakePredictor(n_chunks=20, chunk_delay_s=0.05)
    host = WorkerHost(lambda: pred, fake_opener)
    yield host
    host.close()


def test_embed_reports_progress_with_an_eta(qtbot, worker_host, fake_opener):
    seen: list[tuple[int, str]] = []
    worker_host.progress.connect(lambda p, t: seen.append((p, t)))
    resp = embed(qtbot, worker_host)
    assert resp.path == "/fake/night.edf" and resp.embeddings.embeddings.shape[1] == 8
    assert worker_host.embedding_ready and not worker_host.busy
    texts = [t for _, t in seen]
    assert "Embedding night: 100%" in texts
    percents = [p for p, t in seen if t.startswith("Embedding")]
    assert len(percents) == 4 and percents == sorted(percents) and percents[-1] == 100
    # the worker opened its own recording of the same path
    assert [str(r.path) for r in fake_opener.opened] == ["/fake/night.edf"]


def test_worker_opens_the_recording_in_its_own_thread(qtbot, qapp, fake_predictor):
    threads = []

    def opener(path):
        from .conftest import FakeCanonicalRecording

        threads.append(QThread.currentThread())
        return FakeCanonicalRecording(path=path)

    host = WorkerHost(lambda: fake_predictor, opener)
    try:
        embed(qtbot, host)
        assert threads and threads[0] is not qapp.thread()
    finally:
        host.close()


def test_search_applies_filters_and_captions_matches(qtbot, worker_host):
    embed(qtbot, worker_host)
    stages = ["N2"] * 40 + ["REM"] * 40 + ["N2"] * 40
    with qtbot.waitSignal(worker_host.finished, timeout=5000) as blocker:
        worker_host.search(parse_query("obstructive apnea stage:REM"), stages=stages)
    resp = blocker.args[0]
    assert isinstance(resp, SearchResponse)
    assert resp.n_found == 4
    assert [s.onset_s for s in resp.result.segments] == [1300.0]  # REM is 1200-2400 s
    assert all(s.caption for s in resp.result.segments)
    assert resp.result.segments[0].caption.startswith("Flow drops")


def test_nothing_matched_keeps_the_best_scores(qtbot, worker_host):
    embed(qtbot, worker_host)
    with qtbot.waitSignal(worker_host.finished, timeout=5000) as blocker:
        worker_host.search("nothing like this")
    resp = blocker.args[0]
    assert resp.result.segments == [] and resp.result.best_scores[:2] == [0.31, 0.29]


def test_only_the_latest_request_is_applied(qtbot, slow_host):
    got: list = []
    slow_host.finished.connect(got.append)
    cancelled: list[int] = []
    slow_host.cancelled.connect(cancelled.append)
    slow_host.embed_night("/fake/night.edf")  # busy for ~1 s: the searches queue up
    first = slow_host.search("apnea one")
    second = slow_host.search("apnea two")
    qtbot.waitUntil(lambda: not slow_host.busy, timeout=5000)
    searches = [r for r in got if isinstance(r, SearchResponse)]
    assert [r.request_id for r in searches] == [second]
    assert searches[0].result.query == "apnea two"
    assert first in cancelled


def test_cancel_stops_between_chunks_and_leaves_the_worker_usable(qtbot, slow_host):
    with qtbot.waitSignal(slow_host.progress, timeout=5000):
        slow_host.embed_night("/fake/night.edf")
    t0 = time.monotonic()
    with qtbot.waitSignal(slow_host.cancelled, timeout=5000):
        slow_host.cancel()
    assert time.monotonic() - t0 < 0.5
    assert not slow_host.embedding_ready
    qtbot.waitUntil(lambda: not slow_host.busy, timeout=2000)
    embed(qtbot, slow_host)  # still works after the cancel
    assert slow_host.embedding_ready


def test_event_loop_keeps_serving_a_timer_during_a_long_night(qtbot, slow_host):
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    try:
        t0 = time.monotonic()
        embed(qtbot, slow_host)
        elapsed = time.monotonic() - t0
    finally:
        timer.stop()
    assert elapsed > 0.9  # 20 chunks of 50 ms really ran in the worker
    assert len(ticks) >= 20
    assert max(b - a for a, b in zip(ticks, ticks[1:], strict=False)) < 0.3


def test_captions_are_answered_between_chunks_of_a_long_embedding(qtbot, slow_host):
    got: list = []
    slow_host.finished.connect(got.append)
    with qtbot.waitSignal(slow_host.progress, timeout=5000):
        slow_host.embed_night("/fake/night.edf")
    rid = slow_host.caption(60.0, 90.0)
    qtbot.waitUntil(lambda: any(isinstance(r, CaptionResponse) for r in got), timeout=5000)
    assert not slow_host.embedding_ready  # the night is still being embedded
    qtbot.waitUntil(lambda: not slow_host.busy, timeout=5000)
    captions = [r for r in got if isinstance(r, CaptionResponse)]
    assert [r.request_id for r in captions] == [rid]  # answered once, not twice
    assert isinstance(got[-1], EmbedNightResponse)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (CheckpointError("resources/models", "no checkpoint here (build one with `make model`)"),
         "resources/models: no checkpoint here"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nsee docs"),
         "out of memory"),
        (OSError("Unable to open file (truncated file)\n  at h5py"), "OSError: Unable to open"),
        (KeyError("config mismatch: embed_dim"), "KeyError"),
    ],
)
def test_errors_become_one_line_failed_signals(qtbot, qapp, fake_opener, exc, expected):
    pred = FakePredictor(fail_with=exc)
    host = WorkerHost(lambda: pred, fake_opener)
    failures: list[Failure] = []
    host.requestFailed.connect(failures.append)
    try:
        with qtbot.waitSignal(host.failed, timeout=5000) as blocker:
            host.embed_night("/fake/night.edf")
        message = blocker.args[0]
        assert expected in message and "\n" not in message
        assert failures[0].kind == "embed"
        pred.fail_with = None
        embed(qtbot, host)  # the worker survived
    finally:
        host.close()


def test_a_factory_that_cannot_load_fails_each_model_request(qtbot, qapp, fake_opener):
    def factory():
        raise CheckpointError("resources/models", "no checkpoint here")

    host = WorkerHost(factory, fake_opener)
    try:
        with qtbot.waitSignal(host.failed, timeout=5000) as blocker:
            host.embed_night("/fake/night.edf")
        assert "no checkpoint" in blocker.args[0]
        # the scored captions need no model: they still work
        with qtbot.waitSignal(host.finished, timeout=10000) as blocker:
            host.reference_captions([Annotation(95.0, 12.0, "Obstructive apnea")], None)
        assert isinstance(blocker.args[0], ReferenceCaptionsResponse)
    finally:
        host.close()


def test_search_before_embedding_fails_politely(qtbot, worker_host):
    with qtbot.waitSignal(worker_host.failed, timeout=5000) as blocker:
        worker_host.search("apnea")
    assert "not embedded yet" in blocker.args[0]


def test_captions_prompt_and_stages(qtbot, worker_host):
    embed(qtbot, worker_host)
    with qtbot.waitSignal(worker_host.finished, timeout=5000) as blocker:
        worker_host.caption(60.0, 90.0)
    resp = blocker.args[0]
    assert isinstance(resp, CaptionResponse) and resp.prompt is None
    assert {c.modality for c in resp.captions} == {"stage_event", "brain", "respiratory"}
    assert all(c.onset_s == 60.0 for c in resp.captions)
    with qtbot.waitSignal(worker_host.finished, timeout=5000) as blocker:
        worker_host.caption(60.0, 90.0, prompt="describe breathing")
    assert blocker.args[0].prompt == "describe breathing"
    assert "breaths/min" in blocker.args[0].captions[0].text
    with qtbot.waitSignal(worker_host.finished, timeout=5000) as blocker:
        worker_host.stage()
    resp = blocker.args[0]
    assert isinstance(resp, StageResponse)
    assert resp.result.stages()[:11] == ["W"] * 10 + ["N1"]
    assert resp.result.channels_used == ["ECG", "Flow", "C4-M1", "SpO2"]


def test_reference_captions_link_facts_to_annotations(qtbot, worker_host):
    embed(qtbot, worker_host)
    anns = [Annotation(95.0, 12.0, "Obstructive apnea")]
    stages = ["W"] * 2 + ["N2"] * 118
    with qtbot.waitSignal(worker_host.finished, timeout=15000) as blocker:
        worker_host.reference_captions(anns, stages)
    resp = blocker.args[0]
    caps = resp.captions
    assert caps.night is not None and len(caps.epochs) == 120
    sources = [f.source for f in caps.epochs[3]["stage_event"].facts]
    assert any(s.startswith("annotation:0:") for s in sources)
    assert resp.annotations == tuple(anns)


def test_close_stops_a_running_night_quickly_and_closes_the_file(qtbot, qapp, fake_opener):
    pred = FakePredictor(n_chunks=200, chunk_delay_s=0.05)
    host = WorkerHost(lambda: pred, fake_opener)
    with qtbot.waitSignal(host.progress, timeout=5000):
        host.embed_night("/fake/night.edf")
    t0 = time.monotonic()
    host.close()
    assert time.monotonic() - t0 < 1.0
    assert not host.thread.isRunning()
    assert fake_opener.opened[0].closed
    with pytest.raises(RuntimeError):
        host.embed_night("/fake/night.edf")
    host.close()  # twice is fine


def test_eta_text():
    clock = EtaClock("Embedding night", now=lambda: 10.0)
    clock.start_time = 0.0
    assert clock.update(43, 100) == (43, "Embedding night: 43% — about 15 s left")
    assert clock.update(0, 100) == (0, "Embedding night: 0%")
    assert clock.update(100, 100) == (100, "Embedding night: 100%")
    assert eta_text(3) == "a few seconds left"
    assert eta_text(180) == "about 3 min left"
    assert one_line(ValueError("a\nb")) == "ValueError: a b"


def test_weak_slot_does_not_keep_its_object_alive():
    calls = []

    class Sink(QObject):
        def on(self, x):
            calls.append(x)

    sink = Sink()
    slot = weak_slot(sink.on)
    slot(1)
    del sink
    gc.collect()
    slot(2)
    assert calls == [1]


# -- the real Predictor (torch) through the worker ---------------------------------------------
def _bundled_checkpoint_present() -> bool:
    from sleeplm_core.resources import resource_path

    models = resource_path("models")
    return models.is_dir() and any(models.glob("meta_*.json"))


def _run_night(qtbot, host, path):
    """Embed, search, caption and stage one night; return the responses."""
    embed_resp = embed(qtbot, host, str(path), timeout=60000)
    with qtbot.waitSignal(host.finished, timeout=60000) as blocker:
        host.search("obstructive apnea", min_score=-1.0, top=3)
    search_resp = blocker.args[0]
    with qtbot.waitSignal(host.finished, timeout=60000) as blocker:
        host.caption(60.0, 90.0)
    caption_resp = blocker.args[0]
    with qtbot.waitSignal(host.finished, timeout=60000) as blocker:
        host.stage()
    return embed_resp, search_resp, caption_resp, blocker.args[0]


@pytest.mark.slow
def test_real_predictor_on_a_micro_checkpoint(qtbot, qapp, tmp_path, small_edf,
                                              torch_one_thread):
    """The real Predictor, an untrained micro model: checks the plumbing, not the answers."""
    import shutil

    import torch

    from sleeplm_core.model.config import config_from_dict
    from sleeplm_core.model.sleeplm import SleepLM
    from sleeplm_core.model.tokenizer import CaptionTokenizer
    from sleeplm_core.train import checkpoint as ckpt
    from sleepviewer.workers import load_predictor
    from tests.core.test_model import micro_config_dict

    torch.manual_seed(0)
    cfg = config_from_dict(micro_config_dict())
    model = SleepLM(cfg, CaptionTokenizer.from_corpus(["stage N2, no events", "stage W"]))
    meta = {"config": cfg.to_dict(), "vocab": model.tokenizer.tokens}
    ckpt.save_checkpoint(tmp_path / "ckpt", 1, model.checkpoint_state_dict(), None, meta)
    night = tmp_path / "night.edf"
    shutil.copy(small_edf, night)
    host = WorkerHost(load_predictor(tmp_path / "ckpt", "cpu"))
    try:
        emb, search, caption, stage = _run_night(qtbot, host, night)
        assert emb.embeddings.model == "sleeplm-micro@1"
        assert len(emb.embeddings.onsets_s) == 39  # 10 min, 30 s windows 15 s apart
        assert isinstance(search, SearchResponse) and search.result.segments
        assert isinstance(caption, CaptionResponse) and caption.captions
        assert isinstance(stage, StageResponse) and len(stage.result.epochs) == 20
    finally:
        host.close()


def test_a_corrupt_checkpoint_is_one_failed_line(qtbot, qapp, tmp_path, fake_opener):
    from sleepviewer.workers import load_predictor

    bad = tmp_path / "ckpt"
    bad.mkdir()
    (bad / "meta_000001.json").write_text("{not json")
    (bad / "model_000001.safetensors").write_bytes(b"\0" * 64)
    host = WorkerHost(load_predictor(bad, "cpu"), fake_opener)
    try:
        with qtbot.waitSignal(host.failed, timeout=60000) as blocker:
            host.embed_night("/fake/night.edf")
        assert str(bad) in blocker.args[0] and "\n" not in blocker.args[0]
    finally:
        host.close()


@pytest.mark.slow
@pytest.mark.skipif(not _bundled_checkpoint_present(),
                    reason="no bundled checkpoint in resources/models yet")
def test_bundled_checkpoint_end_to_end(qtbot, qapp, tmp_path, torch_one_thread):
    import shutil

    from sleeplm_core.resources import resource_path

    night = tmp_path / "sample_night.edf"
    shutil.copy(resource_path("sample", "sample_night.edf"), night)
    shutil.copy(resource_path("sample", "sample_night.xml"), tmp_path / "sample_night.xml")
    host = WorkerHost()
    try:
        emb, search, caption, stage = _run_night(qtbot, host, night)
        assert len(stage.result.epochs) == 180
        assert all(c.text.strip() for c in caption.captions)
        # the query "apnea", at the calibrated threshold, lands on true apneas
        with qtbot.waitSignal(host.finished, timeout=60000) as blocker:
            host.search("apnea", top=3)
        found = blocker.args[0].result.segments
        assert found, "the calibrated search found no apnea in a night with AHI 20"
        from sleeplm_core.io.annotations import read_annotations
        from sleeplm_core.io.labels import APNEAS, RESPIRATORY_EVENTS

        truth = read_annotations(tmp_path / "sample_night.xml")

        def hits(seg, labels):
            a, b = seg.onset_s, seg.onset_s + seg.duration_s
            return any(t.label in labels and t.onset_s < b and t.onset_s + t.duration_s > a
                       for t in truth)

        assert hits(found[0], APNEAS)  # the best match is a true apnea
        assert all(hits(seg, RESPIRATORY_EVENTS) for seg in found)  # all 3 are breathing events
    finally:
        host.close()


def test_a_corrupt_embedding_cache_is_noted_not_silently_rebuilt(qtbot, worker_host, tmp_path):
    night = tmp_path / "night.edf"
    night.write_bytes(b"0       some recording bytes")
    (tmp_path / "night.edf.sleeplm.h5").write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    resp = embed(qtbot, worker_host, path=str(night))
    assert "could not be read" in resp.note and "night.edf.sleeplm.h5" in resp.note
    (tmp_path / "night.edf.sleeplm.h5").unlink()
    assert embed(qtbot, worker_host, path=str(night)).note == ""  # nothing there: nothing to say
