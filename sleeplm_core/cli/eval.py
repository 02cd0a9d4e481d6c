"""``sleeplm eval --suite NAME [--json] [--checkpoint PATH]``: run an evaluation suite.

Suites are registered in :mod:`sleeplm_core.eval.suites` (``dreams``: real EEG from the
DREAMS spindle database, compared with YASA and the experts; ``synthetic``: placeholder).
YASA results are cached under ``~/.cache/sleeplm/`` so reruns are instant.

Usage::

    python -m sleeplm_core.cli.main eval --suite dreams
    sleeplm eval --suite dreams --json --checkpoint runs/tiny/model_000200.safetensors
    SLEEPLM_REAL_DATA=/data/dreams-spindles sleeplm eval --suite dreams --no-cache
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sleeplm_core.eval.suites import SUITES, SuiteOptions, format_table, run_suite


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``eval`` subcommand."""
    p = subparsers.add_parser("eval", help="run an evaluation suite (real EEG, YASA reference)")
    p.add_argument(
        "--suite",
        required=True,
        action="append",
        choices=sorted(SUITES),
        help="suite to run; repeat for several",
    )
    p.add_argument("--checkpoint", type=Path, default=None, help="SleepLM checkpoint to evaluate")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="DREAMS folder (default: $SLEEPLM_REAL_DATA or ../shared/data/real/dreams-spindles)",
    )
    p.add_argument("--no-cache", action="store_true", help="recompute YASA instead of caching")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm eval``; SleepLMError propagates (exit 2 in main)."""
    options = SuiteOptions(
        checkpoint=args.checkpoint, data_root=args.data, use_cache=not args.no_cache
    )
    results = [run_suite(name, options) for name in args.suite]
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(format_table(results))
    return 0
