"""Scoring logic (Qt-free): keys, the epoch grid, runs and auto-advance."""

from __future__ import annotations

import numpy as np
import pytest

from sleeplm_core.io.annotations import Annotation
from sleeplm_core.stages import STAGE_TO_INT
from sleepviewer.scoring import (
    SCORING_ACTIONS,
    EpochGrid,
    action_for_stage,
    codes_from_annotations,
    plan_score,
    stage_annotations,
    stage_for_key,
    stage_runs,
)


@pytest.mark.parametrize(
    ("key", "stage"),
    [("0", "W"), ("w", "W"), ("W", "W"), ("1", "N1"), ("2", "N2"), ("3", "N3"), ("4", "REM"),
     ("r", "REM"), ("R", "REM"), ("5", None), ("x", None), ("", None)],
)
def test_stage_for_key(key, stage):
    assert stage_for_key(key) == stage


def test_actions_are_unique_and_cover_all_scored_stages():
    names = [a.name for a in SCORING_ACTIONS]
    keys = [k.lower() for a in SCORING_ACTIONS for k in a.keys]
    assert len(set(names)) == len(names)
    assert len(set(keys)) == len(keys)
    for stage in ("W", "N1", "N2", "N3", "REM", "UNS"):
        assert action_for_stage(stage).stage == stage


def test_grid_partial_last_epoch_and_lookup():
    grid = EpochGrid.for_duration(95.0)
    assert grid.n_epochs == 4
    assert grid.index_at(0.0) == 0
    assert grid.index_at(29.999) == 0
    assert grid.index_at(30.0) == 1
    assert grid.index_at(1e6) == 3
    assert grid.index_at(-5) == 0
    assert list(grid.epochs_in(15.0, 61.0)) == [0, 1, 2]
    assert list(grid.epochs_in(30.0, 60.0)) == [1]
    assert EpochGrid.for_duration(3600.0).n_epochs == 120


def test_plan_score_advances_and_stops_at_the_end():
    grid = EpochGrid(10)
    assert plan_score(3, "N2", grid).next_epoch == 4
    assert plan_score(3, "N2", grid, auto_advance=False).next_epoch == 3
    assert plan_score(9, "REM", grid).next_epoch == 9
    plan = plan_score([5, 2, 3], "N3", grid)
    assert plan.epochs == (2, 3, 5) and plan.next_epoch == 6
    assert plan_score(4, "UNS", grid).next_epoch == 4  # unscoring stays put
    with pytest.raises(ValueError):
        plan_score(10, "N2", grid)
    with pytest.raises(ValueError):
        plan_score(1, "S2", grid)


def test_codes_from_annotations_majority_rule():
    grid = EpochGrid(6)
    anns = [
        Annotation(0.0, 60.0, "Sleep stage W"),
        Annotation(60.0, 30.0, "Sleep stage 2"),
        Annotation(100.0, 50.0, "Sleep stage R"),  # covers the midpoints of epochs 3 and 4
        Annotation(50.0, 0.0, "Hypopnea"),  # not a stage: ignored
    ]
    codes = codes_from_annotations(anns, grid)
    assert codes.dtype == np.int8
    assert codes.tolist() == [0, 0, 2, 4, 4, -2]


def test_runs_and_stage_annotations_round_trip():
    grid = EpochGrid(8)
    codes = np.array([0, 0, 1, 2, 2, -2, 4, -1], dtype=np.int8)
    assert stage_runs(codes) == [(0, 2, 0), (2, 3, 1), (3, 5, 2), (5, 6, -2), (6, 7, 4), (7, 8, -1)]
    anns = stage_annotations(codes, grid)
    assert [a.label for a in anns] == [
        "Sleep stage W", "Sleep stage N1", "Sleep stage N2", "Sleep stage R", "Movement time",
    ]
    assert anns[0].duration_s == 60.0
    assert np.array_equal(codes_from_annotations(anns, grid), codes)
    assert stage_runs(np.array([], dtype=np.int8)) == []
    assert STAGE_TO_INT["UNS"] == -2
