"""Shards: EDF -> HDF5 -> Dataset round trip, resume, parts, bad input, channel dropout."""

from __future__ import annotations

import re
import shutil
import socket
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from sleeplm_core.cli.main import main
from sleeplm_core.data import dataset as ds_mod
from sleeplm_core.data import sources as src_mod
from sleeplm_core.data.dataset import ShardDataset, drop_channels
from sleeplm_core.data.shards import FORMAT_VERSION, build_shards, open_shard, parse_part
from sleeplm_core.data.sources import resolve_sources
from sleeplm_core.errors import ShardError
from sleeplm_core.io.annotations import write_nsrr_xml
from sleeplm_core.io.edf_writer import SignalSpec, write_edf, write_edf_annotations
from sleeplm_core.io.recording import Recording
from sleeplm_core.synth.night import generate_night, write_night

HOURS = 0.1  # 12 epochs per synthetic night keeps every build well under a second


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth_shards")
    results = build_shards(resolve_sources(f"synth:3:{HOURS}"), out, progress=False)
    assert [r.status for r in results] == ["built"] * 3
    return out


@pytest.fixture(scope="module")
def edf_night(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("edf")
    night = generate_night(hours=HOURS, seed=11, ahi=30)
    edf, _xml = write_night(night, folder / "night11.edf")
    return edf


def test_edf_to_shard_to_dataset_round_trip(edf_night: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["shards", "build", str(edf_night), str(out), "--no-progress"]) == 0
    assert "built 1 shards" in capsys.readouterr().out
    shard = out / "night11.h5"
    with Recording.open(edf_night, annotations=edf_night.with_suffix(".xml")) as rec:
        want = rec.canonical(0.0, 12 * 30.0)
        stages = rec.hypnogram.as_int()
    with open_shard(shard) as f:
        assert f["signals"].dtype == np.float16 and f["signals"].shape == (12, 12, 1920)
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["source_file"] == str(edf_night)
        assert f.attrs["annotation_file"].endswith("night11.xml")
        assert '"C3-M2"' in f.attrs["channel_sources"]
        assert f["events/label"].shape[0] > 0
        assert f["captions/night"].asstr()[0].startswith(("TST", "Total", "The patient"))
    samples = list(ShardDataset([shard], shuffle=False))
    assert [s["epoch_index"] for s in samples] == list(range(12))
    for s in samples:
        e = s["epoch_index"]
        x = want.data[:, e * 1920 : (e + 1) * 1920]
        assert s["signal"].dtype.is_floating_point and tuple(s["signal"].shape) == (12, 1920)
        np.testing.assert_allclose(s["signal"].numpy(), x, rtol=2e-3, atol=1e-2)
        assert s["mask"].numpy().tolist() == want.mask.tolist()
        assert s["stage"] == stages[e]
        assert s["record_id"] == "night11"
        assert set(s["captions"]) == {"brain", "heart", "respiratory", "somatic", "stage_event"}
        assert s["segment_caption"] and s["night_caption"]


def test_resume_rebuilds_only_the_missing_shard(synth_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "resume"
    shutil.copytree(synth_dir, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")}
    (out / "synth-00001.h5").unlink()
    (out / ".synth-00001.h5.tmp-999").write_bytes(b"half a shard")  # left by a killed build
    results = build_shards(resolve_sources(f"synth:3:{HOURS}"), out, progress=False)
    assert {r.record_id: r.status for r in results} == {
        "synth-00000": "exists",
        "synth-00001": "built",
        "synth-00002": "exists",
    }
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")}
    assert after["synth-00000.h5"] == before["synth-00000.h5"]
    assert after["synth-00002.h5"] == before["synth-00002.h5"]
    assert not list(out.glob(".*tmp*"))


def test_synthetic_shards_are_deterministic(synth_dir: Path, tmp_path: Path) -> None:
    build_shards(resolve_sources(f"synth:1:{HOURS}"), tmp_path, progress=False)
    with h5py.File(tmp_path / "synth-00000.h5") as a, h5py.File(synth_dir / "synth-00000.h5") as b:
        np.testing.assert_array_equal(a["signals"][:], b["signals"][:])
        assert list(a["captions/brain"].asstr()[:, 0]) == list(b["captions/brain"].asstr()[:, 0])


def test_parts_split_the_work(tmp_path: Path) -> None:
    sources = resolve_sources("synth:5:0.02")
    got: list[str] = []
    for i in range(2):
        # part 0 goes through the process pool, part 1 builds in this process
        rs = build_shards(sources, tmp_path, part=(i, 2), workers=2 - i, progress=False)
        assert {r.status for r in rs} == {"built"}
        got += [r.record_id for r in rs]
    assert sorted(got) == [s.record_id for s in sources] and len(set(got)) == 5
    with pytest.raises(ShardError, match="i must be in"):
        parse_part("2/2")


def test_bad_recordings_are_skipped_and_listed(edf_night: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "cohort"
    src.mkdir()
    shutil.copy(edf_night, src / "good.edf")
    (src / "corrupt.edf").write_bytes(b"0       this is not an EDF" * 10)
    x = np.random.default_rng(0).normal(size=256 * 60)
    light = [SignalSpec("Light", "OTHER", 256.0, "lux", x)]
    write_edf(src / "lightonly.edf", light, [], start=datetime(2024, 1, 1, 22, 0))
    code = main(["shards", "build", str(src), str(tmp_path / "out"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    assert "built 1 shards" in captured.out and "skipped 2 bad" in captured.out
    assert "skipped corrupt:" in captured.err
    assert "skipped lightonly:" in captured.err and "no usable channel" in captured.err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.h5"]


def test_version_mismatch_and_corrupt_shards(synth_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.h5"
    shutil.copy(synth_dir / "synth-00000.h5", old)
    with h5py.File(old, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ShardError, match="format version") as exc:
        ShardDataset([old])
    assert "\n" not in exc.value.one_line() and str(old) in exc.value.one_line()
    cut = tmp_path / "cut.h5"
    data = (synth_dir / "synth-00000.h5").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match="corrupt or truncated"):
        open_shard(cut)
    rebuilt = build_shards(resolve_sources("synth:1:0.02"), tmp_path, progress=False)
    assert rebuilt[0].status == "built"
    with h5py.File(tmp_path / "synth-00000.h5", "a") as f:
        f.attrs["complete"] = False
    with pytest.raises(ShardError, match="incomplete"):
        open_shard(tmp_path / "synth-00000.h5")


def test_channel_dropout_never_drops_all(synth_dir: Path) -> None:
    rng = np.random.default_rng(0)
    for _ in range(2000):
        mask = rng.random(12) < 0.5
        kept = drop_channels(mask, 0.95, rng)
        assert not (kept & ~mask).any()
        assert kept.any() == mask.any()
    ds = ShardDataset(synth_dir, channel_dropout=0.9, seed=1)
    n = 0
    for s in ds:
        m = s["mask"].numpy()
        assert m.any() and m.sum() <= 3 + 12 // 2
        assert not s["signal"].numpy()[~m].any()
        if not m[[4, 5, 6, 7]].any():
            assert "brain" not in s["captions"]
        n += 1
    assert n == 36



def test_staging_montage_reduction_keeps_eeg_eog_and_chin_only(synth_dir: Path) -> None:
    from sleeplm_core.io.channels import CANONICAL_SLOTS

    slot = CANONICAL_SLOTS.index
    kept = [slot("C3_M2"), slot("C4_M1"), slot("EOG_L"), slot("EMG_CHIN")]
    reduced = 0
    for s in ShardDataset(synth_dir, seed=2, staging_montage_prob=0.5):
        m, x = s["mask"].numpy(), s["signal"].numpy()
        assert not x[~m].any()
        if m.sum() == 4 and m[kept].all():  # these nights have every channel: E1 is the EOG
            reduced += 1
            assert "respiratory" not in s["captions"] and "heart" not in s["captions"]
    assert 6 <= reduced <= 30  # about half of 36


def test_staging_rows_take_both_central_eegs_chin_and_one_eog() -> None:
    from sleeplm_core.io.channels import CANONICAL_SLOTS, staging_rows

    def names(present: list[str]) -> list[str]:
        mask = np.isin(np.array(CANONICAL_SLOTS), present)
        return [s for s, on in zip(CANONICAL_SLOTS, staging_rows(mask), strict=True) if on]

    assert names(list(CANONICAL_SLOTS)) == ["EOG_L", "C3_M2", "C4_M1", "EMG_CHIN"]
    assert names(["EOG_R", "C4_M1", "ECG", "SPO2"]) == ["EOG_R", "C4_M1"]  # E2 when no E1
    assert names(["ECG", "AIRFLOW"]) == []


def test_epochs_split_across_ranks_and_workers(synth_dir: Path, monkeypatch) -> None:
    ds = ShardDataset(synth_dir, seed=3)
    seen: list[tuple[int, int]] = []
    for rank in range(2):
        for wid in range(3):
            monkeypatch.setattr(ds_mod, "_rank_and_world", lambda r=rank: (r, 2))
            monkeypatch.setattr(
                ds_mod, "get_worker_info", lambda w=wid: SimpleNamespace(id=w, num_workers=3)
            )
            seen += [tuple(x) for x in ds._items().tolist()]
    assert len(seen) == len(set(seen)) == len(ds) == 36  # 36 is a multiple of 2 ranks
    monkeypatch.setattr(ds_mod, "get_worker_info", lambda: None)
    per_rank = []
    for rank in range(5):  # 36 epochs over 5 ranks: 7 each, one left for a later pass
        monkeypatch.setattr(ds_mod, "_rank_and_world", lambda r=rank: (r, 5))
        per_rank.append(len(ds._items()))
    assert per_rank == [7] * 5
    ds.set_epoch(1)
    monkeypatch.setattr(ds_mod, "_rank_and_world", lambda: (0, 1))
    monkeypatch.setattr(ds_mod, "get_worker_info", lambda: None)
    assert ds._items().tolist() != ShardDataset(synth_dir, seed=3)._items().tolist()


def test_sleep_edf_offline_fails_fast(monkeypatch) -> None:
    monkeypatch.setattr(src_mod, "SLEEP_EDF_HOST", ("127.0.0.1", 9))
    with pytest.raises(ShardError, match="cannot reach") as exc:
        resolve_sources("sleep-edf:0")
    assert "\n" not in exc.value.one_line()
    with pytest.raises(ShardError, match="write e.g."):
        resolve_sources("sleep-edf:zero")


@pytest.mark.slow
def test_sleep_edf_download(tmp_path: Path) -> None:
    try:
        socket.create_connection(src_mod.SLEEP_EDF_HOST, timeout=3).close()
    except OSError:
        pytest.skip("offline: Sleep-EDF cannot be downloaded")
    results = build_shards(resolve_sources("sleep-edf:0"), tmp_path, progress=False)
    assert results[0].status == "built" and results[0].n_epochs > 1000


def test_nsrr_cohort_and_sleep_edf_layouts(tmp_path: Path) -> None:
    night = generate_night(hours=HOURS, seed=5)
    root = tmp_path / "cohort" / "polysomnography"
    (root / "edfs" / "shhs1").mkdir(parents=True)
    (root / "annotations-events-nsrr" / "shhs1").mkdir(parents=True)
    write_edf(root / "edfs" / "shhs1" / "shhs1-200001.edf", night.signals, [], start=night.start)
    write_nsrr_xml(
        night.annotations, root / "annotations-events-nsrr" / "shhs1" / "shhs1-200001-nsrr.xml"
    )
    sleep_edf = tmp_path / "sleep-edf"
    sleep_edf.mkdir()
    write_edf(sleep_edf / "SC4001E0-PSG.edf", night.signals, [], start=night.start)
    write_edf_annotations(
        night.annotations.stages(), sleep_edf / "SC4001EC-Hypnogram.edf", start=night.start
    )
    for src, rid in ((tmp_path / "cohort", "shhs1-200001"), (sleep_edf, "SC4001E0")):
        (source,) = resolve_sources(str(src))
        assert source.record_id == rid and source.annotations is not None
        (result,) = build_shards([source], tmp_path / "out", progress=False)
        assert result.status == "built", result.message
        with open_shard(result.path) as f:
            stages = f["stages"][:]
            n_events = f["events/label"].shape[0]
        np.testing.assert_array_equal(stages, night.hypnogram.as_int()[: len(stages)])
        assert n_events == (len(night.annotations.events()) if rid.startswith("shhs") else 0)


def test_duplicated_annotations_are_kept_once(edf_night: Path, tmp_path: Path) -> None:
    # `sleeplm synth` writes the events both into the EDF+ and into the XML beside it
    (result,) = build_shards(resolve_sources(str(edf_night)), tmp_path, progress=False)
    with Recording.open(edf_night) as rec:
        n_events = len(rec.annotations.events())
    with open_shard(result.path) as f:
        assert f["events/label"].shape[0] == n_events


@pytest.mark.real
def test_real_psg_excerpt_builds(real_data_dir: Path, tmp_path: Path) -> None:
    edf = real_data_dir / "dreams-spindles" / "excerpt3.edf"
    (result,) = build_shards(resolve_sources(str(edf)), tmp_path, progress=False)
    assert result.status == "built" and result.n_epochs == 60, result.message
    with open_shard(result.path) as f:
        brain = list(f["captions/brain"].asstr()[:, 0])
        heart = list(f["captions/heart"].asstr()[:, 0])
    assert all("C3-A1" in text for text in brain)
    rates = [int(m) for text in heart for m in re.findall(r"(\d+) (?:bpm|beats)", text)[:1]]
    assert len(rates) >= 50 and all(40 <= r <= 110 for r in rates)
