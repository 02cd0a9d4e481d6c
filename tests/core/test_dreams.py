"""DREAMS loader and YASA baselines on the real excerpts (skipped when ../shared is absent).

The real files are read in place, for evaluation only; nothing is copied into the repo.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sleeplm_core.errors import SleepLMError
from sleeplm_core.eval.dreams import (
    ENV_VAR,
    DreamsExcerpt,
    default_root,
    in_window,
    load_dreams,
    rows_to_epochs,
)

SHARED = Path(__file__).resolve().parents[3] / "shared"
DREAMS_ROOT = SHARED / "data" / "real" / "dreams-spindles"
EXPERT1_COUNTS = {1: 52, 2: 60, 3: 5, 4: 44, 5: 56, 6: 72, 7: 18, 8: 48}  # README table

needs_real = pytest.mark.skipif(not DREAMS_ROOT.is_dir(), reason="../shared data is absent")


# --- no real data needed ----------------------------------------------------------------------


def test_rows_to_epochs_reversed_codes_and_majority() -> None:
    # 5 W, 4 REM, 3 S1, 2 S2, 1 S3 + 0 S4 -> N3 (they vote together)
    rows = [5] * 4 + [3] * 2 + [4] * 6 + [1, 1, 1, 0, 0, 0] + [-1] * 6 + [-2, -3, -2, -3, 2, 2]
    assert rows_to_epochs(rows) == ["W", "REM", "N3", "ART", "UNS"]


def test_rows_to_epochs_tie_goes_to_later_rows_and_partial_dropped() -> None:
    assert rows_to_epochs([2, 2, 2, 3, 3, 3]) == ["N1"]
    assert rows_to_epochs([3, 3, 3, 2, 2, 2]) == ["N2"]
    assert rows_to_epochs([2] * 6 + [5] * 5) == ["N2"]  # 11 rows: one whole epoch
    with pytest.raises(ValueError):
        rows_to_epochs([7] * 6)


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SleepLMError, match="DREAMS spindle database not found"):
        load_dreams(tmp_path / "nope")


def test_env_var_overrides_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert default_root() == tmp_path
    (tmp_path / "dreams-spindles").mkdir()
    assert default_root() == tmp_path / "dreams-spindles"


def test_in_window() -> None:
    assert in_window([(1.0, 0.5), (999.9, 1.0), (1000.0, 1.0)], 1000.0) == [
        (1.0, 0.5),
        (999.9, 1.0),
    ]


# --- real data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def excerpts() -> list[DreamsExcerpt]:
    if not DREAMS_ROOT.is_dir():
        pytest.skip("../shared/data/real/dreams-spindles is absent")
    return load_dreams(DREAMS_ROOT)


@needs_real
@pytest.mark.real
def test_eight_excerpts_of_60_epochs(excerpts: list[DreamsExcerpt]) -> None:
    assert [e.id for e in excerpts] == list(range(1, 9))
    for e in excerpts:
        assert e.n_epochs == 60
        assert e.data.dtype == np.float32
        assert e.data.ndim == 1
        assert e.duration_s == pytest.approx(1800.0)  # excerpt 6: 1800.7 s cut to 1800 s
        assert e.expert1_scored_until_s == 1000.0
        assert len(e.hypnogram_rows) == 360
        # real EEG in µV: SD in the tens of µV (README: 19-29 µV)
        assert 10.0 < float(np.std(e.data)) < 40.0
    sfs = {e.id: e.sf for e in excerpts}
    assert sfs == {1: 100, 2: 200, 3: 50, 4: 200, 5: 200, 6: 200, 7: 200, 8: 200}
    assert excerpts[0].ch_name == "C3-A1"
    assert excerpts[1].ch_name == "CZ-A1"


@needs_real
@pytest.mark.real
def test_hypnogram_mapping(excerpts: list[DreamsExcerpt]) -> None:
    stages = {e.id: Counter(e.hypnogram) for e in excerpts}
    assert stages[7]["REM"] > 0  # only excerpt 7 has REM (code 4)
    assert all(c["REM"] == 0 for i, c in stages.items() if i != 7)
    assert stages[8]["N3"] == 0  # excerpt 8 has codes 2, 3, 5 only (no S3/S4)
    assert set().union(*stages.values()) <= {"W", "N1", "N2", "N3", "REM"}
    # reversed codes, checked against physiology: spindles sit in N2, hardly in wake
    onsets = Counter(e.hypnogram[int(on // 30)] for e in excerpts for on, _ in e.spindles_expert1)
    assert onsets["N2"] / sum(onsets.values()) > 0.75
    assert onsets["REM"] == 0


@needs_real
@pytest.mark.real
def test_spindle_scorings(excerpts: list[DreamsExcerpt]) -> None:
    assert {e.id: len(e.spindles_expert1) for e in excerpts} == EXPERT1_COUNTS
    for e in excerpts:
        assert max(on for on, _ in e.spindles_expert1) < e.expert1_scored_until_s
        assert all(0.0 < d < 3.0 for _, d in e.spindles_expert1)
        assert len(e.spindles_automatic) > 0
        if e.id <= 6:
            assert e.spindles_expert2 is not None
        else:
            assert e.spindles_expert2 is None
    assert excerpts[0].spindles_expert1[0] == (pytest.approx(282.24), pytest.approx(0.72))


@needs_real
@pytest.mark.real
@pytest.mark.slow
def test_yasa_baselines_on_two_excerpts(excerpts: list[DreamsExcerpt]) -> None:
    pytest.importorskip("yasa")
    from sleeplm_core.eval.baselines import (
        bundled_eeg_files,
        yasa_agreement,
        yasa_spindles,
        yasa_staging,
    )
    from sleeplm_core.eval.metrics import match_events, staging_scores

    runs = {}
    for e in (excerpts[0], excerpts[2]):  # 100 Hz, and the 50-Hz excerpt (upsampled to 100 Hz)
        stages = yasa_staging(e, cache=False)
        spindles = yasa_spindles(e, cache=False)
        assert len(stages) == e.n_epochs
        assert set(stages) <= {"W", "N1", "N2", "N3", "REM"}
        assert spindles and all(on < 1000.0 for on, _ in spindles)
        runs[e.id] = (stages, spindles)
    # excerpt 1, measured with YASA 0.8.1: kappa 0.53, spindle F1 0.46 (IoU >= 0.3)
    e1 = excerpts[0]
    assert staging_scores(e1.hypnogram, runs[1][0]).kappa == pytest.approx(0.53, abs=0.1)
    assert match_events(e1.spindles_expert1, runs[1][1]).f1 == pytest.approx(0.46, abs=0.1)
    # YASA against itself through the agreement helper (for files without expert labels)
    e3 = excerpts[2]
    same = yasa_agreement(lambda d, sf, ch: runs[3][0], e3.data, e3.sf, e3.ch_name, cache=False)
    assert (same.n, same.kappa) == (60, 1.0)
    assert isinstance(bundled_eeg_files(), list)  # pyedflib ships no real EEG: usually []


# --- suites and the eval command ----------------------------------------------------------------


def test_format_table_fixed_width() -> None:
    from sleeplm_core.eval.suites import Row, SuiteResult, format_table

    res = SuiteResult(
        "dreams",
        [
            Row("dreams", "kappa", {"YASA": 0.4965, "SleepLM": float("nan")}, 480),
            Row("dreams", "", text="SleepLM: model not available (no module)"),
        ],
    )
    lines = format_table([res]).splitlines()
    assert lines[0].split(" | ")[:3] == ["suite ", "metric", "SleepLM"]
    assert [c.strip() for c in lines[2].split("|")] == [
        "dreams",
        "kappa",
        "nan",
        "0.496",
        "-",
        "-",
        "480",
    ]
    assert len(lines[0]) == len(lines[2])
    assert lines[3] == "dreams | SleepLM: model not available (no module)"
    assert res.to_json()["rows"][0]["values"]["SleepLM"] is None  # NaN -> null


def test_synthetic_suite_refuses_without_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sleeplm_core.cli.main import main
    from sleeplm_core.eval import base

    monkeypatch.setattr(
        base, "load_model", lambda checkpoint=None: base.LoadedModel(reason="no Predictor")
    )
    assert main(["eval", "--suite", "synthetic"]) == 2
    assert "needs the SleepLM model" in capsys.readouterr().err


class _Oracle:
    """A fake SleepLM that answers with expert 1's labels (checks the model slot plumbing)."""

    def __init__(self, excerpts: list[DreamsExcerpt]) -> None:
        self._by_data = {id(e.data): e for e in excerpts}

    def predict_stages(self, data: np.ndarray, sf: float, ch_name: str) -> list[str]:
        return list(self._by_data[id(data)].hypnogram)

    def localize(
        self, data: np.ndarray, sf: float, ch_name: str, query: str
    ) -> list[tuple[float, float, float]]:
        assert query == "sleep spindle"
        return [(on, dur, 1.0) for on, dur in self._by_data[id(data)].spindles_expert1]


@needs_real
@pytest.mark.real
def test_dreams_suite_model_slot(
    excerpts: list[DreamsExcerpt],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sleeplm_core.cli.main import main
    from sleeplm_core.eval import suites

    oracle = _Oracle(excerpts)
    assert isinstance(oracle, suites.Stager) and isinstance(oracle, suites.Localizer)
    monkeypatch.setattr(
        suites, "load_model", lambda checkpoint=None: suites.LoadedModel(oracle, oracle)
    )
    monkeypatch.setattr(suites, "_yasa_rows", lambda ex, use_cache: ([], [], {}, "skipped"))
    monkeypatch.setattr(suites, "load_dreams", lambda root=None: excerpts)
    assert main(["eval", "--suite", "dreams", "--json"]) == 0

    (out,) = json.loads(capsys.readouterr().out)
    rows = {r["metric"]: r for r in out["rows"] if r["metric"]}
    assert rows["staging kappa (pooled, 8 excerpts)"]["values"] == {"SleepLM": 1.0}
    spindle = rows["spindle F1 vs expert 1 (IoU>=0.3, <1000 s, mean)"]["values"]
    assert spindle["SleepLM"] == 1.0
    assert spindle["DREAMS-auto"] == pytest.approx(0.624, abs=0.005)
    assert rows["spindle F1, expert 2 vs expert 1 (excerpts 1-6)"]["values"]["experts"] == (
        pytest.approx(0.592, abs=0.005)
    )
    assert out["model"]["available"] is True
