"""Calibration choices stay apart from what the evaluation measures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sleeplm_core.eval.synthetic import PARAPHRASE_QUERIES
from sleeplm_core.model.prompts import EVENT_TYPES, LONG_QUERIES, stage_prompts
from sleeplm_core.train.calibrate import CALIB_QUERIES, DEV_PHRASINGS, n_matched


def test_development_phrasings_are_neither_trained_nor_evaluated() -> None:
    dev = {p.lower() for phrases in DEV_PHRASINGS.values() for p in phrases}
    bank = {p.lower() for t in EVENT_TYPES for p in t.phrases}
    bank |= {p.lower() for ps in stage_prompts().values() for p in ps}
    bank |= {p.lower() for p in LONG_QUERIES}
    evaluated = {p.lower() for p in PARAPHRASE_QUERIES.values()}
    assert dev and not dev & bank and not dev & evaluated
    assert set(DEV_PHRASINGS) <= set(CALIB_QUERIES)  # each names an event type with truth


def test_n_matched_is_one_to_one_at_iou() -> None:
    true = [(0.0, 10.0), (20.0, 10.0)]
    assert n_matched(true, [(1.0, 9.0), (2.0, 8.0)], 0.3) == 1  # one truth, matched once
    assert n_matched(true, [(1.0, 9.0), (21.0, 9.0)], 0.3) == 2
    assert n_matched(true, [(8.0, 10.0)], 0.3) == 0  # IoU 2/18 < 0.3
    assert n_matched([], [(0.0, 1.0)], 0.3) == 0
    assert np.isclose(n_matched(true, [], 0.3), 0)


def test_settings_without_training_go_into_the_checkpoint_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sleeplm calibrate --set signal.merge_size=2``: how the bundle gets token merging."""
    from sleeplm_core.cli.main import main
    from sleeplm_core.train.calibrate import apply_settings
    from tests.core.test_inference import micro_checkpoint_in

    ckpt = micro_checkpoint_in(tmp_path)
    (meta_path,) = ckpt.glob("meta_*.json")
    before = json.loads(meta_path.read_text())
    apply_settings(ckpt, ["signal.merge_size=2", "signal.merge_from=0"])
    after = json.loads(meta_path.read_text())
    assert after["config"]["signal"]["merge_size"] == 2
    assert after["config"]["signal"]["merge_from"] == 0
    after["config"]["signal"].update(merge_size=1, merge_from=1)
    assert after == before  # nothing else moved
    # a setting that would change the parameters, or an impossible one: one line, status 2
    for bad in ("signal.width=32", "signal.merge_size=7"):
        code = main(["calibrate", "--checkpoint", str(ckpt), "--set", bad, "-q"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "signal." in err[0], err
    assert json.loads(meta_path.read_text())["config"]["signal"]["merge_size"] == 2
