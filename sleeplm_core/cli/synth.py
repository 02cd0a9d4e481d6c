r"""``sleeplm synth OUT.edf --hours H --seed S [--ahi X]``: write a synthetic PSG night.

Writes ``OUT.edf`` (EDF+ with all signals and the ground-truth events as annotations) and
``OUT.xml`` beside it (NSRR XML with the same stages and events), then prints both paths.

Usage::

    python -m sleeplm_core.cli.main synth night.edf --hours 8 --seed 1 --ahi 20
    sleeplm synth sample.edf --hours 1.5 --seed 50006 --ahi 20 --sf 128 --ecg-sf 128 --legs 1 \
        --plm-index 30
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from sleeplm_core.errors import ConfigError, RecordingError
from sleeplm_core.synth.settings import EEG_RATES


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``synth`` subcommand."""
    p = subparsers.add_parser(
        "synth", help="generate a synthetic PSG night (EDF+ and NSRR XML) with ground truth"
    )
    p.add_argument("out", help="output EDF file; the NSRR XML is written beside it")
    p.add_argument("--hours", type=float, default=8.0, help="time in bed (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--ahi", type=float, default=None, help="apnea-hypopnea index (events/h)")
    p.add_argument("--sf", type=int, default=256, choices=EEG_RATES, help="EEG/EOG/EMG rate in Hz")
    p.add_argument("--age", type=float, default=None, help="age in years (drawn if omitted)")
    p.add_argument("--plm-index", type=float, default=None,
                   help="periodic limb movements per hour of sleep (drawn if omitted)")  # fmt: skip
    p.add_argument("--ecg-sf", type=int, default=None, help="ECG rate in Hz (default 256)")
    p.add_argument(
        "--legs", type=int, default=2, choices=(1, 2), help="leg EMG channels: 2 (LLeg, RLeg) or 1"
    )
    p.set_defaults(func=run)


def _check_out(path: Path) -> None:
    if path.suffix.lower() != ".edf":
        raise RecordingError(path, "output must be an .edf file")
    if path.is_dir():
        raise RecordingError(path, "is a folder, not a file")
    if not path.parent.is_dir():
        raise RecordingError(path, f"folder {str(path.parent)!r} does not exist")


def run(args: argparse.Namespace) -> int:
    """Generate the night and write it; return 0.

    Raises
    ------
    RecordingError
        When the output path is unusable (checked before generating).
    ConfigError
        When a setting is out of range.
    """
    from sleeplm_core.synth.night import generate_night, write_night

    out = Path(args.out)
    _check_out(out)
    if not (math.isfinite(args.hours) and 0 < args.hours <= 24):
        raise ConfigError(None, f"--hours must be within (0, 24], got {args.hours:g}")
    settings: dict[str, Any] = {"sf": args.sf, "legs": args.legs}
    if args.age is not None:
        settings["age"] = args.age
    if args.ecg_sf is not None:
        settings["ecg_sf"] = args.ecg_sf
    if args.plm_index is not None:
        if not (math.isfinite(args.plm_index) and args.plm_index >= 0):
            raise ConfigError(None, f"--plm-index must be >= 0, got {args.plm_index:g}")
        settings["plm_index"] = args.plm_index
    night = generate_night(hours=args.hours, seed=args.seed, ahi=args.ahi, **settings)
    edf, xml = write_night(night, out)
    s = night.subject
    print(
        f"wrote {edf} and {xml}: {night.duration_s / 3600:.2f} h, age {s['age']:.0f}, "
        f"AHI {s['ahi_actual']:.1f}/h, {len(night.annotations)} annotations"
    )
    return 0
