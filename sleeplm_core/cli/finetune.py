r"""``sleeplm finetune``: continue training a checkpoint on new data.

The architecture and caption vocabulary come from the checkpoint (words of the new captions
outside that vocabulary become ``[UNK]``); the optimizer starts fresh at a tenth of the
config's learning rate unless ``--lr`` is given. The new run is a normal run
directory (``--out``), resumable like ``sleeplm train``.

Usage::

    python -m sleeplm_core.cli.finetune --checkpoint runs/tiny --data shards/ \
        --out runs/ft --steps 500
    sleeplm finetune --checkpoint runs/tiny/meta_000200.json --synthetic 4 --out runs/ft --steps 50

On N processes::

    torchrun --standalone --nproc_per_node=N -m sleeplm_core.cli.finetune \
        --checkpoint runs/base --data shards/ --out runs/base-ft --steps 2000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sleeplm_core.cli.train import add_data_arguments, add_run_arguments, run_kwargs, standalone


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm finetune``."""
    p = subparsers.add_parser("finetune", help="continue training a checkpoint on new data",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--checkpoint", type=Path, required=True, help="run directory or checkpoint file"
    )
    add_data_arguments(p)
    add_run_arguments(p)
    p.add_argument(
        "--freeze",
        nargs="*",
        default=[],
        choices=("signal", "text", "decoder"),
        help="SleepLM-Base only: towers to keep fixed",
    )
    p.add_argument(
        "--recon-weight",
        type=float,
        default=0.0,
        help="SleepLM-Base only: weight of a fresh reconstruction head (off: 0)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm finetune``; return the exit status."""
    from sleeplm_core.model.config import config_from_dict, with_overrides
    from sleeplm_core.train import checkpoint as ckpt
    from sleeplm_core.train.loop import TrainRun, train

    meta = ckpt.load_meta(args.checkpoint)
    if meta.get("family") == "published":
        return run_published(args)
    cfg = with_overrides(config_from_dict(meta["config"]), args.set, sections=("train", "loss"))
    kwargs = run_kwargs(args)
    if kwargs["lr"] is None:
        kwargs["lr"] = cfg.train.lr * 0.1
    d, step = ckpt.resolve(args.checkpoint)
    train(
        TrainRun(
            cfg=cfg,
            init_from=d / f"model_{step:06d}.safetensors",
            extra_meta={"finetuned_from": f"{d}/meta_{step:06d}.json", "init_meta": meta},
            **kwargs,  # type: ignore[arg-type]
        )
    )
    return 0


def run_published(args: argparse.Namespace) -> int:
    """Fine-tune a published SleepLM-Base checkpoint (:mod:`sleeplm_core.published.finetune`)."""
    from sleeplm_core.published.finetune import PublishedRun, finetune_published

    if getattr(args, "synth_shards", None) is not None:
        from sleeplm_core.errors import SleepLMError

        raise SleepLMError(None, "SleepLM-Base fine-tuning reads --data shards or --synthetic")
    if getattr(args, "set", None):
        from sleeplm_core.errors import SleepLMError

        raise SleepLMError(None, "--set applies to our own configs, not SleepLM-Base")
    kwargs: dict[str, Any] = dict(run_kwargs(args))
    optional = ("steps", "batch_size", "lr", "checkpoint_every", "log_every")
    run = PublishedRun(
        init_from=args.checkpoint, out_dir=kwargs["out_dir"], data=kwargs["data"],
        synthetic=kwargs["synthetic"], freeze=tuple(args.freeze),
        recon_weight=args.recon_weight, device=kwargs["device"], progress=kwargs["progress"],
        **{k: kwargs[k] for k in optional if kwargs[k] is not None},
    )  # fmt: skip
    finetune_published(run)
    return 0


if __name__ == "__main__":
    sys.exit(standalone("finetune", add_parser, sys.argv[1:]))
