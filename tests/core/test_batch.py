"""``sleeplm batch``: inputs, per-night results, resuming, failures, and a 2-process gloo run."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from sleeplm_core.cli.batch import RESULT, collect_nights, nsrr_annotations
from sleeplm_core.cli.main import main
from sleeplm_core.io.annotations import read_annotations
from sleeplm_core.io.hypnogram import Hypnogram
from tests.core.test_inference import micro_checkpoint_in

REPO = Path(__file__).resolve().parents[2]
N_NIGHTS = 6

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return micro_checkpoint_in(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six short synthetic nights (EDF+ with NSRR XML beside), one folder."""
    from sleeplm_core.synth import generate_night, write_night

    folder = tmp_path_factory.mktemp("cohort")
    for k in range(N_NIGHTS):
        write_night(generate_night(hours=0.1, seed=500 + k, ahi=30.0), folder / f"n{k}.edf")
    return folder


def _batch(*argv: str) -> int:
    return main(["batch", *argv, "--no-progress", "--threads", "1"])


def _summary(out: Path) -> list[dict[str, str]]:
    path = out / "summary.csv"
    if not path.exists():
        import pyarrow.parquet as pq

        return [
            {k: "" if v is None else str(v) for k, v in r.items()}
            for r in pq.read_table(out / "summary.parquet").to_pylist()
        ]
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _comparable(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    drop = {"cpu_s", "wall_s"}
    return {r["id"]: {k: v for k, v in r.items() if k not in drop} for r in rows}


# --- inputs ------------------------------------------------------------------------------------


def test_inputs_folder_glob_manifest_and_nsrr_layout(tmp_path: Path) -> None:
    edfs = tmp_path / "polysomnography" / "edfs" / "shhs1"
    xmls = tmp_path / "polysomnography" / "annotations-events-nsrr" / "shhs1"
    edfs.mkdir(parents=True)
    xmls.mkdir(parents=True)
    for name in ("shhs1-200001", "shhs1-200002"):
        (edfs / f"{name}.edf").write_bytes(b"")
        (xmls / f"{name}-nsrr.xml").write_text("<x/>")
    (edfs / "SC4001EC-Hypnogram.edf").write_bytes(b"")  # scoring, not a recording
    nights = collect_nights([str(tmp_path)])
    assert [n.id for n in nights] == ["shhs1-200001", "shhs1-200002"]
    assert nights[0].annotations == xmls / "shhs1-200001-nsrr.xml"
    assert nsrr_annotations(edfs / "missing.edf") is None

    glob_nights = collect_nights([str(edfs / "*2.edf")])
    assert [n.id for n in glob_nights] == ["shhs1-200002"]

    other = tmp_path / "other"
    other.mkdir()
    (other / "a.edf").write_bytes(b"")
    (other / "a.xml").write_text("<x/>")
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("id,path,annotations\nsubj-1,other/a.edf,\n")
    [m] = collect_nights([str(manifest)])
    assert (m.id, m.path, m.annotations) == ("subj-1", other / "a.edf", other / "a.xml")
    # the same file twice is one night; two files of one name get distinct ids
    (other / "shhs1-200001.edf").write_bytes(b"")
    ids = [n.id for n in collect_nights([str(tmp_path), str(other / "a.edf")])]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 4


def test_input_matching_nothing_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _batch("stage", str(tmp_path / "nothing-*.edf"), "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2 and "matches no recording" in err and len(err.strip().splitlines()) == 1


# --- one process -------------------------------------------------------------------------------


def test_stage_writes_every_result_skips_done_and_lists_failures(
    tmp_path: Path, ckpt: Path, cohort: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        for ext in (".edf", ".xml"):
            (src / f"n{k}{ext}").write_bytes((cohort / f"n{k}{ext}").read_bytes())
    (src / "broken.edf").write_bytes(b"not an EDF at all")
    out = tmp_path / "out"
    assert _batch("stage", str(src), "--out", str(out), "--checkpoint", str(ckpt)) == 1
    err = capsys.readouterr().err
    assert "broken.edf" in err
    night = out / "nights" / "n0"
    with h5py.File(night / "embeddings.h5") as f:
        assert f["embeddings"].shape[0] == 12 == f["onsets_s"].shape[0]  # 0.1 h: 12 epochs
        assert np.allclose(np.linalg.norm(f["embeddings"][()], axis=1), 1.0, atol=1e-4)
    with (night / "hypnogram.csv").open(newline="") as fh:
        hyp = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in hyp] == list(range(12))
    scored = Hypnogram.from_annotations(read_annotations(night / "hypnogram.xml"), 360.0)
    assert scored is not None and list(scored.stages) == [r["stage"] for r in hyp]
    rows = {r["id"]: r for r in _summary(out)}
    assert set(rows) == {"n0", "n1"}
    row = rows["n0"]
    assert float(row["pred_TIB"]) == 6.0  # minutes
    assert 0.0 <= float(row["agree_accuracy"]) <= 1.0 and int(row["agree_n"]) > 0
    # indices of the XML's scored events over the scored sleep (none yet in 6 min: NaN)
    assert "AHI" in row and float(row["TST_h"]) == float(row["scored_TST"]) / 60.0
    with (out / "failures.csv").open(newline="") as fh:
        [failure] = list(csv.DictReader(fh))
    assert failure["id"] == "broken" and "broken.edf" in failure["problem"]

    # a second run redoes nothing that is done
    stamp = (night / RESULT).stat().st_mtime_ns
    (src / "broken.edf").unlink()
    assert _batch("stage", str(src), "--out", str(out), "--checkpoint", str(ckpt)) == 0
    assert (night / RESULT).stat().st_mtime_ns == stamp
    assert "2 of 2 nights done (2 were already done" in capsys.readouterr().out


# --- many processes ----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(REPO)}  # fmt: skip


def _cli(task: str, cohort: Path, out: Path, ckpt: Path) -> list[str]:
    return ["-m", "sleeplm_core.cli.batch", task, str(cohort), "--out", str(out),
            "--checkpoint", str(ckpt), "--device", "cpu", "--threads", "1",
            "--no-progress"]  # fmt: skip


@pytest.mark.slow
def test_two_gloo_processes_equal_one_process(tmp_path: Path, ckpt: Path, cohort: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert _batch("stage", str(cohort), "--out", str(one), "--checkpoint", str(ckpt)) == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           *_cli("stage", cohort, two, ckpt)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("nights done") == 1  # rank 0 alone writes the summary
    assert _comparable(_summary(one)) == _comparable(_summary(two))
    assert len(_summary(two)) == N_NIGHTS
    for k in range(N_NIGHTS):
        a, b = one / "nights" / f"n{k}", two / "nights" / f"n{k}"
        assert (a / "hypnogram.csv").read_bytes() == (b / "hypnogram.csv").read_bytes()
        with h5py.File(a / "embeddings.h5") as fa, h5py.File(b / "embeddings.h5") as fb:
            assert np.allclose(fa["embeddings"][()], fb["embeddings"][()], atol=1e-5)


@pytest.mark.slow
def test_killed_run_resumes_without_redoing_finished_nights(
    tmp_path: Path, ckpt: Path, cohort: Path
) -> None:
    out = tmp_path / "out"
    log = tmp_path / "first-run.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, *_cli("embed", cohort, out, ckpt)], cwd=REPO,
                                env=_env(), stdout=fh, stderr=fh)  # fmt: skip
        deadline = time.monotonic() + 240
        while len(list(out.glob(f"nights/*/{RESULT}"))) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob(f"nights/*/{RESULT}")}
    assert 2 <= len(done) < N_NIGHTS, "the run was not stopped halfway"
    for path in out.glob("nights/*/*"):  # a killed write leaves no half-written result
        if path.name == RESULT:
            assert json.loads(path.read_text())["task"] == "embed"

    again = subprocess.run([sys.executable, *_cli("embed", cohort, out, ckpt)], cwd=REPO,
                           env=_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{N_NIGHTS} of {N_NIGHTS} nights done ({len(done)} were already done" in again.stdout
    for name, stamp in done.items():
        assert (out / "nights" / name / RESULT).stat().st_mtime_ns == stamp
    assert len(_summary(out)) == N_NIGHTS
