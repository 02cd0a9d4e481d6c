"""``sleeplm shards build SRC OUT``: recordings to HDF5 training shards with captions.

Usage::

    python -m sleeplm_core.cli.main shards build synth:16:8 out/ --workers 2
    python -m sleeplm_core.cli.main shards build /data/nsrr/shhs out/ --part 0/10
    python -m sleeplm_core.cli.main shards build sleep-edf:0-19 out/

SRC is an EDF file, a folder (NSRR cohorts included), ``synth:N[:hours]`` or
``sleep-edf:SUBJECTS`` (see :mod:`sleeplm_core.data.sources`). Complete shards already in
OUT are kept, so an interrupted build is resumed by running the same command again.
Bad recordings are skipped and listed at the end; the exit status is 1 when every
recording of this part failed, else 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from sleeplm_core.data.shards import build_shards, parse_part
from sleeplm_core.data.sources import resolve_sources


def add_parser(subparsers: Any) -> None:
    """Register ``shards`` (sub-action ``build``) on the top-level subparsers."""
    p = subparsers.add_parser("shards", help="build HDF5 training shards with captions")
    actions = p.add_subparsers(dest="action", required=True)
    b = actions.add_parser("build", help="turn recordings into shards")
    b.add_argument("src", help="EDF file, folder, synth:N[:hours] or sleep-edf:SUBJECTS")
    b.add_argument("out", help="output folder")
    b.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    b.add_argument("--part", default="0/1", help="build part i of N (0 <= i < N), e.g. 3/16")
    b.add_argument("--seed", type=int, default=0, help="caption seed (default 0)")
    b.add_argument(
        "--variants",
        type=int,
        default=1,
        help="caption renderings per epoch: paraphrases of the same facts",
    )
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the shards; print a summary and the skipped recordings.

    Returns
    -------
    int
        0, or 1 when every recording of this part failed.
    """
    part = parse_part(args.part)
    t0 = time.perf_counter()
    sources = resolve_sources(args.src)
    results = build_shards(
        sources,
        args.out,
        workers=max(1, args.workers),
        part=part,
        seed=args.seed,
        variants=max(1, args.variants),
        progress=False if args.no_progress or getattr(args, "quiet", False) else None,
    )
    built = [r for r in results if r.status == "built"]
    kept = [r for r in results if r.status == "exists"]
    failed = [r for r in results if r.status == "failed"]
    hours = sum(r.n_epochs for r in built) * 30 / 3600
    took = time.perf_counter() - t0
    print(
        f"part {part[0]}/{part[1]}: built {len(built)} shards ({hours:.1f} h of recording) "
        f"in {took:.1f} s, kept {len(kept)} complete, skipped {len(failed)} bad"
    )
    for r in failed:
        print(f"skipped {r.record_id}: {r.message}", file=sys.stderr)
    return 1 if failed and not built and not kept else 0
