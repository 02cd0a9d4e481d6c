"""``sleeplm eval --suite NAME [--json] [--checkpoint PATH]``: run an evaluation suite.

Suites are registered in :mod:`sleeplm_core.eval.suites` (``dreams``: real EEG from the
DREAMS spindle database, compared with YASA and the experts; ``synthetic``: held-out
synthetic nights, see :mod:`sleeplm_core.eval.synthetic`).
YASA results are cached in the user cache folder (``~/.cache/sleeplm/`` on Linux, via
platformdirs) so reruns are instant.

Usage::

    python -m sleeplm_core.cli.main eval --suite dreams
    sleeplm eval --suite dreams --json --checkpoint runs/tiny/model_000200.safetensors
    sleeplm eval --suite synthetic --nights 6 --hours 1
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
        help="dreams: the DREAMS folder (default: $SLEEPLM_REAL_DATA or "
        "../shared/data/real/dreams-spindles); synthetic: where the held-out nights and their "
        "caches are kept (default: the user cache folder's synthetic-eval)",
    )
    p.add_argument("--nights", type=int, default=None, help="synthetic: held-out nights (6)")
    p.add_argument("--hours", type=float, default=None, help="synthetic: hours per night (1.0)")
    p.add_argument("--no-cache", action="store_true", help="recompute YASA instead of caching")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm eval``; SleepLMError propagates (exit 2 in main)."""
    from dataclasses import replace

    from sleeplm_core.cli.progress import progress_bar

    options = SuiteOptions(
        checkpoint=args.checkpoint,
        data_root=args.data,
        use_cache=not args.no_cache,
        nights=args.nights,
        hours=args.hours,
    )
    results = []
    for name in args.suite:
        with progress_bar(f"eval {name}", quiet=getattr(args, "quiet", False), unit="pass") as bar:
            results.append(run_suite(name, replace(options, progress=bar)))
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(format_table(results))
    return 0
