"""``sleeplm stage | search | caption | embed`` on a micro checkpoint: the fixed JSON shapes,
readable tables, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import h5py
import pytest

from sleeplm_core.cli.main import main
from sleeplm_core.embedding_cache import cache_path
from sleeplm_core.stages import SCORED_STAGES
from tests.core.test_inference import micro_checkpoint_in, small_night, tiny_edf

STAGE_KEYS = {"epoch", "onset_s", "stage", "confidence", "proba"}
SEGMENT_KEYS = {"onset_s", "duration_s", "score", "channel_types", "caption"}
CAPTION_KEYS = {"onset_s", "duration_s", "level", "modality", "text", "checks"}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(micro_checkpoint_in(tmp_path_factory.getbasetemp()))


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_night(tmp_path_factory.mktemp("cli-night"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = _run(capsys, *argv, "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


# --- stage -----------------------------------------------------------------------------------


def test_stage_json_shape(capsys: pytest.CaptureFixture[str], ckpt: str, night: Path) -> None:
    data = _json(capsys, "stage", str(night), "--checkpoint", ckpt)
    assert set(data) == {"epochs", "channels_used", "model"}
    assert len(data["epochs"]) == 12  # 0.1 h
    for i, e in enumerate(data["epochs"]):
        assert set(e) == STAGE_KEYS
        assert e["epoch"] == i and e["onset_s"] == 30.0 * i
        assert e["stage"] in SCORED_STAGES and set(e["proba"]) == set(SCORED_STAGES)
        assert abs(sum(e["proba"].values()) - 1.0) < 1e-4
        assert e["confidence"] == max(e["proba"].values())
    assert "C3-M2" in data["channels_used"] and "O1-M2" not in data["channels_used"]
    assert data["model"].startswith("sleeplm-micro@")


def test_stage_reads_the_staging_montage_unless_asked_for_every_channel(
    capsys: pytest.CaptureFixture[str], ckpt: str, night: Path
) -> None:
    from sleeplm_core.embedding_cache import cache_path
    from sleeplm_core.io.recording import Recording

    cache_path(night).unlink(missing_ok=True)  # a search cache would be reused instead
    montage = _json(capsys, "stage", str(night), "--checkpoint", ckpt)["channels_used"]
    every = _json(capsys, "stage", str(night), "--checkpoint", ckpt, "--all-channels")
    with Recording.open(night) as rec:
        assert every["channels_used"] == rec.channels_used()
    assert set(montage) < set(every["channels_used"])
    assert not any("ECG" in c or "SpO2" in c or "Airflow" in c for c in montage)
    assert len(every["epochs"]) == 12


def test_stage_table_and_partial_epoch(
    capsys: pytest.CaptureFixture[str], ckpt: str, tmp_path: Path
) -> None:
    edf = tiny_edf(tmp_path / "short.edf", [("C3-M2", "EEG", 128.0)], 100.0)
    code, out, _ = _run(capsys, "stage", str(edf), "--checkpoint", ckpt)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["epoch", "onset", "stage", "conf"]
    rows = [ln for ln in lines if ln.strip()[:1].isdigit()]
    assert len(rows) == 3  # 100 s: three whole epochs, the partial one dropped
    assert "channels used: C3-M2" in out


# --- search ----------------------------------------------------------------------------------


def test_search_segments(capsys: pytest.CaptureFixture[str], ckpt: str, night: Path) -> None:
    data = _json(
        capsys, "search", str(night), "obstructive apnea", "--checkpoint", ckpt,
        "--min-score", "-1", "--top", "2",
    )  # fmt: skip
    assert set(data) == {"query", "segments"} and data["query"] == "obstructive apnea"
    assert 1 <= len(data["segments"]) <= 2
    scores = [s["score"] for s in data["segments"]]
    assert scores == sorted(scores, reverse=True)
    for s in data["segments"]:
        assert set(s) == SEGMENT_KEYS and s["duration_s"] >= 30.0
        assert isinstance(s["caption"], str) and s["channel_types"]


def test_search_nothing_matched(capsys: pytest.CaptureFixture[str], ckpt: str, night: Path) -> None:
    code, out, err = _run(
        capsys, "search", str(night), "sleep spindle", "--checkpoint", ckpt, "--min-score", "1.5",
        "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["segments"] == [] and len(data["best_scores"]) == 5
    assert all(b < 1.5 for b in data["best_scores"])
    assert "nothing matched" in err and len(err.strip().splitlines()) == 1
    code, out, err = _run(
        capsys, "search", str(night), "sleep spindle", "--checkpoint", ckpt, "--min-score", "1.5"
    )
    assert out == "" and "best scores" in err


@pytest.mark.parametrize("query", ["", "  "])
def test_search_empty_query(
    capsys: pytest.CaptureFixture[str], ckpt: str, night: Path, query: str
) -> None:
    code, out, err = _run(capsys, "search", str(night), query, "--checkpoint", ckpt)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "query is empty" in err


# --- caption ---------------------------------------------------------------------------------


def test_caption_epoch_and_span(capsys: pytest.CaptureFixture[str], ckpt: str, night: Path) -> None:
    data = _json(capsys, "caption", str(night), "--epoch", "2", "--beam", "1", "--checkpoint", ckpt)
    caps = data["captions"]
    assert set(data) == {"captions"} and caps
    assert all(set(c) == CAPTION_KEYS for c in caps)
    assert all(
        {"sentence", "status", "reason"} == set(ch) and ch["sentence"] in c["text"]
        for c in caps for ch in c["checks"]
    )
    assert {c["onset_s"] for c in caps} == {60.0} and {c["level"] for c in caps} == {"epoch"}
    assert caps[0]["modality"] == "stage_event"
    assert {"brain", "heart", "respiratory", "somatic"} <= {c["modality"] for c in caps}
    data = _json(
        capsys, "caption", str(night), "--start", "30", "--stop", "90", "--modality", "brain",
        "--beam", "1", "--prompt", "the eeg", "--checkpoint", ckpt,
    )  # fmt: skip
    assert [(c["onset_s"], c["modality"]) for c in data["captions"]] == [
        (30.0, "brain"),
        (60.0, "brain"),
    ]


def test_caption_night_summary(capsys: pytest.CaptureFixture[str], ckpt: str, night: Path) -> None:
    data = _json(capsys, "caption", str(night), "--night", "--checkpoint", ckpt)
    (cap,) = data["captions"]
    assert (cap["level"], cap["modality"], cap["onset_s"]) == ("night", "summary", 0.0)
    assert cap["duration_s"] == 360.0
    assert "model estimate" in cap["text"] and "apnea" in cap["text"]


def test_caption_outside_the_recording(
    capsys: pytest.CaptureFixture[str], ckpt: str, night: Path
) -> None:
    code, _, err = _run(capsys, "caption", str(night), "--epoch", "99", "--checkpoint", ckpt)
    assert code == 2 and "outside the recording" in err and err.count("\n") == 1


# --- embed and the cache -----------------------------------------------------------------------


def test_embed_reports_and_refreshes(
    capsys: pytest.CaptureFixture[str], ckpt: str, tmp_path: Path
) -> None:
    night = small_night(tmp_path)
    data = _json(capsys, "embed", str(night), "--checkpoint", ckpt)
    assert data["cache"] == str(cache_path(night)) and Path(data["cache"]).is_file()
    assert data["windows"] == 23 and data["stride_s"] == 15.0  # (360 - 30) / 15 + 1
    assert data["computed"] and data["cache_before"] == "missing"
    again = _json(capsys, "embed", str(night), "--checkpoint", ckpt)
    assert not again["computed"] and again["cache_before"] == "valid"
    forced = _json(capsys, "embed", str(night), "--checkpoint", ckpt, "--force")
    assert forced["computed"] and forced["cache_before"] == "valid"
    assert Path(forced["cache"]).is_file()
    with h5py.File(cache_path(night), "r+") as f:
        f.attrs["fingerprint"] = "another file"
    code, out, err = _run(capsys, "embed", str(night), "--checkpoint", ckpt)
    assert code == 0 and "rebuilt" in err and err.count("\n") == 1
    assert f"cache: {cache_path(night)}" in out and "23 windows" in out
    cache_path(night).write_bytes(b"not hdf5")
    # stage makes its own uncached pass over the staging montage: the cache is not its business
    code, out, err = _run(capsys, "stage", str(night), "--checkpoint", ckpt, "--json")
    assert code == 0 and len(json.loads(out)["epochs"]) == 12
    assert cache_path(night).read_bytes() == b"not hdf5"
    code, out, err = _run(capsys, "embed", str(night), "--checkpoint", ckpt)
    assert code == 0 and "could not be read; rebuilt" in err


# --- bad input -------------------------------------------------------------------------------


def _broken_checkpoint(src: str, dst: Path, how: str) -> Path:
    if how == "missing":
        return dst / "nowhere"
    shutil.copytree(src, dst)
    (model,) = dst.glob("model_*.safetensors")
    (meta,) = dst.glob("meta_*.json")
    if how == "truncated":
        model.write_bytes(model.read_bytes()[:1000])
    elif how == "corrupt-meta":
        meta.write_text("{not json", encoding="utf-8")
    elif how == "other-version":
        data = json.loads(meta.read_text(encoding="utf-8"))
        data["format"] = "sleeplm-checkpoint/99"
        meta.write_text(json.dumps(data), encoding="utf-8")
    return dst


@pytest.mark.parametrize("how", ["missing", "truncated", "corrupt-meta", "other-version"])
@pytest.mark.parametrize("command", ["stage", "embed"])
def test_bad_checkpoint_is_one_line(
    capsys: pytest.CaptureFixture[str],
    ckpt: str,
    night: Path,
    tmp_path: Path,
    how: str,
    command: str,
) -> None:
    bad = _broken_checkpoint(ckpt, tmp_path / "bad", how)
    code, out, err = _run(capsys, command, str(night), "--checkpoint", str(bad))
    assert code == 2 and out == ""
    assert err.startswith("sleeplm: error: ") and err.count("\n") == 1
    if how == "other-version":
        assert "sleeplm-checkpoint/99" in err


def test_recording_with_no_usable_channel(
    capsys: pytest.CaptureFixture[str], ckpt: str, tmp_path: Path
) -> None:
    edf = tiny_edf(tmp_path / "light.edf", [("Light", "OTHER", 10.0)], 60.0)
    for cmd in (["stage"], ["search", "apnea"], ["caption", "--epoch", "0"], ["embed"]):
        code, _, err = _run(capsys, cmd[0], str(edf), *cmd[1:], "--checkpoint", ckpt)
        assert code == 2 and "no channel the model can use" in err and err.count("\n") == 1


def test_missing_recording(capsys: pytest.CaptureFixture[str], ckpt: str, tmp_path: Path) -> None:
    code, _, err = _run(capsys, "stage", str(tmp_path / "absent.edf"), "--checkpoint", ckpt)
    assert code == 2 and err.count("\n") == 1 and "absent.edf" in err
