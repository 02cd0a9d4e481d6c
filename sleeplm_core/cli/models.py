"""``sleeplm models {list,import,pull}``: the models this machine can use.

Usage::

    sleeplm models list [--json]
    sleeplm models import model_checkpoint.pt [--config CONFIG.json] [--out DIR]
    sleeplm models pull sleeplm-base [--revision REV] [--out DIR]

``import`` converts the authors' SleepLM-Base ``.pt`` once into safetensors (read with
``torch.load(weights_only=True)``: tensors and plain containers only; every key and shape
checked), ``pull`` downloads it from Hugging Face first. Both write into ``--out`` (default:
``<models folder>/sleeplm-base``, the folder ``sleeplm models list`` and the viewer's Model
menu read; ``$SLEEPLM_MODELS_DIR`` moves it). Then ``sleeplm stage night.edf --checkpoint
DIR`` and the viewer use it like the bundled model.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from sleeplm_core.errors import SleepLMError
from sleeplm_core.model_store import default_models_dir, list_stored


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm models``."""
    p = subparsers.add_parser("models", help="list, import or download models",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="models_command", required=True)
    ls = sub.add_parser("list", help="bundled, imported and fine-tuned models")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)
    imp = sub.add_parser("import", help="convert the authors' model_checkpoint.pt once")
    imp.add_argument("checkpoint", type=Path, help="model_checkpoint.pt (a PyTorch weights file)")
    imp.add_argument(
        "--config",
        default=None,
        help="published config name or JSON (default sleeplm-base-published)",
    )
    imp.add_argument("--out", type=Path, default=None, help="output folder")
    imp.set_defaults(func=run_import)
    pull = sub.add_parser("pull", help="download a published model and import it")
    pull.add_argument("name", help="sleeplm-base")
    pull.add_argument("--revision", default=None, help="Hugging Face revision (commit or tag)")
    pull.add_argument("--out", type=Path, default=None, help="output folder")
    pull.set_defaults(func=run_pull)


def _out(args: argparse.Namespace) -> Path:
    out: Path = args.out or default_models_dir() / "sleeplm-base"
    if out.exists() and not out.is_dir():
        raise SleepLMError(out, "exists and is not a folder")
    return out


def run_list(args: argparse.Namespace) -> int:
    """Print the models, one per line (or JSON)."""
    models = list_stored()
    if args.json:
        print(json.dumps({"models": [{**asdict(m), "path": str(m.path)} for m in models]}))
        return 0
    for m in models:
        print(f"{m.name:<28} {m.kind:<10} {m.family:<9} {m.config:<24} step {m.step:<6} {m.path}")
    if len(models) <= 1:
        print(f"(import SleepLM-Base with `sleeplm models import model_checkpoint.pt`; "
              f"models folder: {default_models_dir()})")  # fmt: skip
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Convert a ``.pt`` checkpoint into a safetensors folder."""
    from sleeplm_core.published.convert import import_checkpoint

    meta = import_checkpoint(args.checkpoint, _out(args), args.config)
    print(f"imported {args.checkpoint} into {meta.parent}")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    """Download and import a published model."""
    from sleeplm_core.published.hub import REVISION, pull

    meta = pull(args.name, _out(args), revision=args.revision or REVISION)
    print(f"downloaded and imported {args.name} into {meta.parent}")
    return 0
