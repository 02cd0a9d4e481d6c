"""Fine-tuning from the viewer: model registry (no Qt), pre-check, dialog + worker, Model menu.

The base model is a micro checkpoint trained here (``sleeplm train --synthetic 2 --steps 2``);
the recordings are two short synthetic nights written as EDF+ with NSRR XML sidecars.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sleepviewer import model_registry as reg
from sleepviewer.widgets.finetune_dialog import RecordingSummary, precheck

ONE_CLASS = "only one stage class (N2) is scored: at least two are needed"
NO_SCORED = "no scored epochs: score some epochs (W, N1, N2, N3, REM) first"


# -- helpers ----------------------------------------------------------------------------------
def _fake_checkpoint(folder: Path, step: int, name: str = "sleeplm-micro", **meta: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"model_{step:06d}.safetensors").write_bytes(b"weights")
    body = {"format": "sleeplm-checkpoint/1", "step": step, "config": {"name": name},
            "metrics": {"loss": 1.25}, **meta}
    (folder / f"meta_{step:06d}.json").write_text(json.dumps(body))
    return folder


def _sha(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


# -- model registry (no Qt) -----------------------------------------------------------------
def test_registry_lists_bundled_then_newest_user_models(tmp_path: Path) -> None:
    bundled = _fake_checkpoint(tmp_path / "bundled", 20000, "sleeplm-tiny")
    users = tmp_path / "models"
    old = _fake_checkpoint(users / "finetuned-a", 10, finetuned_from="x/meta_020000.json",
                           finetune={"mode": "full", "base_model": "sleeplm-tiny"})
    new = _fake_checkpoint(users / "finetuned-b", 3, finetune={"mode": "fewshot"},
                           fewshot_head={"accuracy": 0.5})
    os.utime(old / "meta_000010.json", (1e9, 1e9))
    (users / "half").mkdir()  # no complete checkpoint: not listed
    (users / "half" / "meta_000001.json").write_text("{}")
    reg.write_status(new, status="cancelled", step=3)
    entries = reg.list_models(users, bundled)
    assert [e.name for e in entries] == ["Bundled (sleeplm-tiny)", "finetuned-b", "finetuned-a"]
    b, n, o = entries
    assert b.bundled and b.key == reg.BUNDLED_KEY and b.step == 20000 and b.mode == "pretrained"
    assert o.base_model == "sleeplm-tiny" and o.mode == "full" and o.metrics["loss"] == 1.25
    assert n.status == "cancelled" and n.mode == "fewshot" and n.metrics["accuracy"] == 0.5
    assert "step 10" in o.describe() and "loss 1.250" in o.describe()
    assert reg.find_entry(entries, str(new)) == n and reg.find_entry(entries, "bundled") == b
    assert reg.find_entry(entries, str(tmp_path / "gone")) is None
    assert reg.list_models(tmp_path / "nowhere", tmp_path / "empty") == []


def test_registry_new_folder_names_and_default_dir(tmp_path: Path, monkeypatch) -> None:
    when = datetime(2026, 11, 25, 10, 3)
    first = reg.new_model_dir(tmp_path, "/data/my night.edf", now=when)
    assert first == tmp_path / "finetuned-20261125-1003-my_night" and not first.exists()
    first.mkdir()
    assert reg.new_model_dir(tmp_path, "my night.edf", now=when).name.endswith("my_night-2")
    monkeypatch.setenv(reg.ENV_MODELS_DIR, str(tmp_path / "m"))
    assert reg.default_models_dir() == tmp_path / "m"
    monkeypatch.delenv(reg.ENV_MODELS_DIR)
    assert reg.default_models_dir().parts[-3:] == ("share", "SleepLM", "models")
    assert reg.is_inside(first / "x", tmp_path) and not reg.is_inside(tmp_path, first)


# -- pre-check (no Qt) ----------------------------------------------------------------------
def _summary(stages: list[str], name: str = "night.edf") -> RecordingSummary:
    anns = [(30.0 * i, 30.0, f"Sleep stage {s}", None) for i, s in enumerate(stages)]
    anns.append((95.0, 12.0, "Obstructive apnea", None))
    return RecordingSummary.from_annotations(name, anns, 30.0 * max(len(stages), 4))


def test_precheck_messages() -> None:
    assert precheck([_summary([])])[0] == [NO_SCORED]
    assert precheck([_summary(["N2"] * 6)])[0] == [ONE_CLASS]
    assert precheck([])[0] == ["no recording selected"]
    bad = RecordingSummary("gone.edf", error="file is missing")
    assert precheck([bad])[0] == ["gone.edf cannot be read: file is missing"]
    ok = _summary(["W", "N2", "N2", "REM"])
    assert ok.stage_counts == {"W": 1, "N2": 2, "REM": 1} and ok.n_scored == 4
    assert precheck([ok]) == ([], [])
    problems, warnings = precheck([ok], "fewshot", k=2)
    assert not problems and "fewer than K=2 epochs of W 1, REM 1" in warnings[0]
    assert precheck([ok], base_ok=False)[0][0].startswith("no base model")


# -- the real thing -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A micro checkpoint: ``sleeplm train --config micro.json --synthetic 2 --steps 2``."""
    import torch

    from sleeplm_core.cli.main import main
    from tests.core.test_model import micro_config_dict

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("base")
    cfg = micro_config_dict()
    cfg["train"]["num_workers"] = 0
    (root / "micro.json").write_text(json.dumps(cfg))
    out = root / "run"
    assert main(["train", "--config", str(root / "micro.json"), "--synthetic", "2",
                 "--epochs-per-night", "8", "--steps", "2", "--out", str(out),
                 "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, Path]]:
    """Two 6-minute synthetic nights that fall asleep after a minute (EDF+ and NSRR XML)."""
    from sleeplm_core.synth.night import generate_night, write_night

    root = tmp_path_factory.mktemp("nights")
    return [write_night(generate_night(hours=0.1, seed=s, sol_min=1.0), root / f"night{s}.edf")
            for s in (1, 2)]


@pytest.fixture
def ft_host(qapp):
    from sleepviewer.workers import WorkerHost

    def no_predictor() -> Any:
        raise AssertionError("fine-tuning never loads a predictor")

    host = WorkerHost(no_predictor)
    yield host
    host.close()
    host.deleteLater()


def _current(edf: Path, xml: Path) -> RecordingSummary:
    """The open night as the viewer would pass it: its annotations as plain values."""
    from sleeplm_core.io.recording import Recording

    with Recording.open(edf, annotations=xml) as rec:
        return RecordingSummary.from_annotations(edf, list(rec.annotations), rec.duration_s)


def test_dialog_precheck_blocks_start(qtbot, ft_host, base_checkpoint, tmp_path) -> None:
    from sleepviewer.widgets.finetune_dialog import FineTuneDialog

    dlg = FineTuneDialog(ft_host, base_checkpoint, tmp_path / "models", _summary([]))
    qtbot.addWidget(dlg)
    assert NO_SCORED in dlg.check_label.text() and not dlg.start_button.isEnabled()
    dlg.add_summary(_summary(["N2"] * 5, "other.edf"))
    assert ONE_CLASS in dlg.check_label.text() and not dlg.start()
    dlg.add_files([tmp_path / "missing.edf"])
    assert "missing.edf cannot be read" in dlg.check_label.text()
    assert not (tmp_path / "models").exists() and dlg.request_id is None


def test_finetune_dialog_end_to_end(qtbot, ft_host, base_checkpoint, nights, tmp_path,
                                    isolated_settings) -> None:
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QMainWindow

    from sleepviewer.model_menu import SETTINGS_KEY, ModelMenuController
    from sleepviewer.widgets.finetune_dialog import FineTuneDialog

    (edf1, xml1), (edf2, xml2) = nights
    before = {**_sha(base_checkpoint), **{p.name: _sha(p.parent)[p.name]
                                          for p in (edf1, xml1, edf2, xml2)}}
    models = tmp_path / "models"
    dlg = FineTuneDialog(ft_host, base_checkpoint, models, _current(edf1, xml1))
    qtbot.addWidget(dlg)
    dlg.add_files([edf2, edf1])  # the open night keeps the viewer's scoring
    assert [r.name for r in dlg.selected()] == ["night1.edf", "night2.edf"]
    assert dlg.selected()[0].annotations is not None
    assert dlg.selected()[1].sidecar == str(xml2) and dlg.check_label.text().startswith("Ready")

    # cancel a long run: it stops within a step; nothing or a complete checkpoint is left
    dlg.steps_spin.setValue(500)
    steps_seen: list[Any] = []
    ft_host.jobProgress.connect(steps_seen.append)
    with qtbot.waitSignal(ft_host.cancelled, timeout=60_000):
        assert dlg.start() and dlg.state == "running" and not dlg.options_box.isEnabled()
        qtbot.waitUntil(lambda: any(p.phase == "train" and p.step >= 1 for p in steps_seen),
                        timeout=60_000)
        dlg.cancel_button.click()
    assert dlg.state == "cancelled" and dlg.start_button.isEnabled()
    first = dlg.out_dir
    assert first is not None and "Cancelled." in dlg.status_label.text()
    assert not first.exists() or reg.read_entry(first).status == "cancelled"
    assert not list(models.glob("*.part"))
    qtbot.waitUntil(lambda: not ft_host.busy, timeout=10_000)

    # the app stays usable: a short run finishes with progress, step, loss and a new folder
    steps_seen.clear()
    dlg.steps_spin.setValue(3)
    with qtbot.waitSignal(dlg.finetuned, timeout=90_000) as done:
        assert dlg.start()
    out = Path(done.args[0])
    assert out.parent == models and out.name.startswith("finetuned-")
    train = [p for p in steps_seen if p.phase == "train"]
    assert [p.step for p in train][-1] == 3 and train[-1].loss is not None
    assert any(p.eta_s is not None and 0 < p.step < 3 for p in train)
    assert "Done in" in dlg.status_label.text() and str(out) in dlg.status_label.text()
    assert not dlg.use_button.isHidden() and dlg.progress_bar.value() == 100
    entry = reg.read_entry(out)
    assert entry is not None and entry.step == 3 and entry.mode == "full"
    meta = json.loads((out / "meta_000003.json").read_text())
    assert meta["finetune"]["viewer_scoring"] == [True, False]
    assert meta["config"]["name"] != "sleeplm-micro"  # its own embedding-cache key
    assert reg.checkpoint_steps(out) == [3] and not list(out.glob("optim_*"))
    after = {**_sha(base_checkpoint), **{p.name: _sha(p.parent)[p.name]
                                         for p in (edf1, xml1, edf2, xml2)}}
    assert after == before  # the base model and the user's files are untouched

    # the Model menu lists it; "Use this model" switches the language host's predictor
    class Host:
        closed = False
        models: list[Any] = []

        def cancel(self, kind: str | None = None) -> None:
            pass

        def set_model(self, path: Any) -> None:
            self.models.append(Path(path))

    window = QMainWindow()
    qtbot.addWidget(window)
    window.menuBar().addMenu("&Help")
    window.settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    language = type("Lang", (), {"host": Host()})()
    menu = ModelMenuController(window, language, models_dir=models,
                               bundled_dir=base_checkpoint)
    names = [a.text() for a in menu.model_actions()]
    assert names[0] == "Bundled (sleeplm-micro)" and out.name in names
    assert [a.text() for a in window.menuBar().actions()][-2:] == ["&Model", "&Help"]
    dlg.useModelRequested.connect(menu.select_path)
    dlg.use_button.click()
    assert language.host.models == [out]
    assert window.settings.value(SETTINGS_KEY) == str(out)
    checked = [a.text() for a in menu.model_actions() if a.isChecked()]
    assert checked == [out.name]
    bundled = menu.model_actions()[0]
    bundled.trigger()
    assert language.host.models[-1] == base_checkpoint
    assert window.settings.value(SETTINGS_KEY) == reg.BUNDLED_KEY
    menu.close()


def test_fewshot_head(qtbot, ft_host, base_checkpoint, nights, tmp_path) -> None:
    from sleepviewer.widgets.finetune_dialog import FineTuneDialog

    (edf1, xml1), (edf2, _) = nights
    dlg = FineTuneDialog(ft_host, base_checkpoint, tmp_path / "models", _current(edf1, xml1))
    qtbot.addWidget(dlg)
    dlg.add_files([edf2])
    dlg.fewshot_radio.setChecked(True)
    dlg.k_spin.setValue(2)
    assert not dlg.steps_spin.isEnabled() and dlg.k_spin.isEnabled()
    t0 = time.monotonic()
    with qtbot.waitSignal(dlg.finetuned, timeout=60_000) as done:
        assert dlg.start()
    out = Path(done.args[0])
    assert {"fewshot_head.safetensors", "fewshot_head.json", "finetune.json"} <= {
        p.name for p in out.iterdir()}
    entry = reg.read_entry(out)
    assert entry is not None and entry.mode == "fewshot" and "accuracy" in entry.metrics
    assert "held-out accuracy" in dlg.status_label.text() or "Done in" in dlg.status_label.text()
    assert time.monotonic() - t0 < 60


def test_error_mid_run_keeps_last_complete_checkpoint(base_checkpoint, nights, tmp_path) -> None:
    """Out of memory at the 4th step: the folder keeps step 2 and says why it stopped."""
    from sleepviewer.model_messages import FinetuneRequest, FinetuneSource
    from sleepviewer.workers import one_line, run_finetune

    (edf1, xml1), _ = nights
    calls = []

    def should_stop() -> bool:  # asked once per shard, then before every optimizer step
        calls.append(1)
        if len(calls) == 1 + 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return False

    out = tmp_path / "models" / "ft"
    req = FinetuneRequest(1, str(base_checkpoint), str(out), (FinetuneSource(str(edf1),
                          sidecar=str(xml1)),), steps=6, checkpoint_every=2)
    with pytest.raises(RuntimeError) as err:
        run_finetune(req, lambda p: None, should_stop)
    assert one_line(err.value).startswith("out of memory")
    entry = reg.read_entry(out)
    assert entry is not None and entry.step == 2 and entry.status == "failed"
    assert reg.read_status(out)["message"].startswith("out of memory")
    assert not list(out.glob("*.tmp")) and reg.checkpoint_steps(out) == [2]
    with pytest.raises(Exception, match="exists already"):  # never written into twice
        run_finetune(req, lambda p: None, lambda: False)
    inside = FinetuneRequest(2, str(base_checkpoint), str(base_checkpoint / "sub"), req.sources)
    with pytest.raises(Exception, match="never writes into its base"):
        run_finetune(inside, lambda p: None, lambda: False)
    assert not (base_checkpoint / "sub").exists()


def test_set_model_swaps_the_predictor_before_the_next_request(qtbot, worker_host,
                                                               fake_predictor) -> None:
    from tests.viewer.conftest import FakePredictor

    other = FakePredictor()
    with qtbot.waitSignal(worker_host.finished, timeout=10_000):
        worker_host.embed_night("/fake/night.edf")
    assert worker_host.embedding_ready and fake_predictor.calls
    worker_host.set_predictor_factory(lambda: other)
    assert not worker_host.embedding_ready  # the old embedding belongs to the old model
    with qtbot.waitSignal(worker_host.finished, timeout=10_000):
        worker_host.embed_night("/fake/night.edf")
    assert other.calls and worker_host.embedding_ready
