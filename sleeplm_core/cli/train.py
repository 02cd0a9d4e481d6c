r"""``sleeplm train``: pretrain SleepLM on shards or on synthetic nights.

Usage::

    python -m sleeplm_core.cli.train --config sleeplm-tiny --synthetic 8 --out runs/tiny --steps 200
    sleeplm train --config sleeplm-tiny --data shards/ --out runs/tiny --steps 5000
    sleeplm train --config sleeplm-tiny --synth-shards 8 --synth-hours 8 --out runs/tiny

Without a data flag, ``--synthetic 8`` is used (what ``make model`` does).
``--synthetic N`` makes cheap in-memory epochs with template captions (seconds to start);
``--synth-shards N`` simulates N realistic nights with :mod:`sleeplm_core.synth`, captions and
shards them into ``OUT/shards`` once, and trains on those shards.

On N local processes (DDP: gloo on CPU, NCCL on GPU)::

    torchrun --standalone --nproc_per_node=N -m sleeplm_core.cli.train \
        --config sleeplm-base --data shards/ --out runs/base --steps 200000

On several nodes, run on each (``out`` must be on a shared file system)::

    torchrun --nnodes=2 --node_rank=R --nproc_per_node=8 --master_addr=HOST --master_port=29500 \
        -m sleeplm_core.cli.train --config sleeplm-base --data shards/ --out runs/base

On a CPU shared with other jobs, ``OMP_NUM_THREADS=1`` is often several times faster than
the default (OpenMP threads spin while waiting for a busy core); ``torchrun`` sets it already.

Running the same command again resumes from the newest checkpoint in ``--out`` (model,
optimizer, step, data order); ``--no-resume`` refuses to start over an existing run instead.
Architecture and training defaults come from the named JSON config; the flags override only
length, batch size, learning rate and checkpoint interval.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sleeplm_core.errors import SleepLMError

DEFAULT_SYNTHETIC_NIGHTS = 8


def standalone(
    name: str,
    add: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None],
    argv: Sequence[str],
) -> int:
    """Run one subcommand as ``python -m sleeplm_core.cli.<name>``.

    Same behaviour as ``sleeplm <name>`` (one-line errors, exit 2) without importing the other
    subcommands, so that each ``torchrun`` process starts quickly.
    """
    parser = argparse.ArgumentParser(prog="sleeplm")
    add(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([name, *argv])
    try:
        return int(args.func(args) or 0)
    except SleepLMError as exc:
        print(f"sleeplm: error: {exc.one_line()}", file=sys.stderr)
        return 2


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data`` / ``--synthetic``, shared with finetune and fewshot."""
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--data", type=Path, metavar="SHARDS", help="directory (or file) of shards")
    data.add_argument(
        "--synthetic",
        type=int,
        metavar="N_NIGHTS",
        help="in-memory synthetic epochs with template captions (fast, for tests and smoke runs)",
    )
    data.add_argument(
        "--synth-shards",
        type=int,
        metavar="N_NIGHTS",
        help="simulate N full nights (sleeplm_core.synth), caption them into OUT/shards, train",
    )
    parser.add_argument(
        "--epochs-per-night", type=int, default=60, help="--synthetic: epochs per night (60)"
    )
    parser.add_argument(
        "--synth-hours", type=float, default=1.0, help="--synth-shards: hours per night (1.0)"
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Length, batch, learning rate, checkpoints, device: shared with finetune."""
    g = parser.add_argument_group("run")
    g.add_argument("--out", type=Path, required=True, help="run directory (checkpoints, metrics)")
    g.add_argument("--steps", type=int, help="total optimizer steps (config default)")
    g.add_argument("--batch-size", type=int, help="epochs per process per step (config default)")
    g.add_argument("--lr", type=float, help="peak learning rate (config default)")
    g.add_argument("--num-workers", type=int, help="DataLoader worker processes (config default)")
    g.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    g.add_argument("--log-every", type=int, help="steps between metrics.jsonl lines")
    g.add_argument("--device", help="force a device (cpu, cuda:0, mps); default: best available")
    g.add_argument("--no-resume", action="store_true", help="fail if --out already has a run")
    g.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config setting, e.g. --set train.augment_prob=0.7 (repeatable)",
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm train``."""
    p = subparsers.add_parser("train", help="pretrain SleepLM", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--config", default="sleeplm-tiny", help="named config or JSON path")
    add_data_arguments(p)
    add_run_arguments(p)
    p.set_defaults(func=run)


def run_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """TrainRun fields from the shared flags."""
    synthetic = args.synthetic
    if args.data is None and synthetic is None and getattr(args, "synth_shards", None) is None:
        synthetic = DEFAULT_SYNTHETIC_NIGHTS
    return {
        "out_dir": args.out,
        "steps": args.steps,
        "data": args.data,
        "synthetic": synthetic,
        "epochs_per_night": args.epochs_per_night,
        "synth_shards": getattr(args, "synth_shards", None),
        "synth_hours": getattr(args, "synth_hours", 1.0),
        "batch_size": args.batch_size,
        "num_workers": getattr(args, "num_workers", None),
        "lr": args.lr,
        "checkpoint_every": args.checkpoint_every,
        "log_every": args.log_every,
        "device": args.device,
        "progress": not (args.no_progress or getattr(args, "quiet", False)),
    }


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm train``; return the exit status."""
    from sleeplm_core.model.config import load_config, with_overrides
    from sleeplm_core.train import checkpoint as ckpt
    from sleeplm_core.train.loop import TrainRun, train

    if args.no_resume and ckpt.latest_step(args.out) is not None:
        raise SleepLMError(args.out, "already holds a run (drop --no-resume to continue it)")
    cfg = with_overrides(load_config(args.config), args.set)
    train(TrainRun(cfg=cfg, **run_kwargs(args)))  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(standalone("train", add_parser, sys.argv[1:]))
