"""``sleeplm stage FILE``: sleep stages, one row per 30-s epoch.

The night is embedded in one window per epoch over the staging montage (EEG, EOG, chin EMG,
what the AASM rules stage from; the whole montage when the file has none of them, or with
``--all-channels``), or read from a valid sidecar cache of ``sleeplm embed`` or the viewer;
each epoch is staged by its similarity to the stage prompts (zero-shot), or, with ``--head``,
by a few-shot head made by ``sleeplm fewshot`` with the same checkpoint. A last partial
epoch is dropped.

Usage::

    python -m sleeplm_core.cli.stage night.edf
    sleeplm stage night.edf --json --checkpoint runs/tiny
    sleeplm stage night.edf --checkpoint runs/tiny --head runs/fs   # a `sleeplm fewshot --out`
    sleeplm stage night.edf --out night-stages.csv   # also .xml (NSRR) or .edf (EDF+)

JSON (fixed shape, read by other tools)::

    {"epochs": [{"epoch": 0, "onset_s": 0.0, "stage": "N2", "confidence": 0.83,
                 "proba": {"W": ..., "N1": ..., "N2": ..., "N3": ..., "REM": ...}}, ...],
     "channels_used": ["C3-M2", ...], "model": "sleeplm-tiny@200"}

``channels_used`` are the file channels that filled the model input slots used. With
``--head`` the JSON also has ``"staged_by": "fewshot-prototype"`` (or ``"fewshot-logistic"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sleeplm_core.cli.embed import (
    STAGING_STRIDE_S,
    add_common_arguments,
    load_predictor,
    open_recording,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm stage``."""
    p = subparsers.add_parser("stage", help="sleep stages per 30-s epoch (zero-shot or few-shot)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_arguments(p)
    p.add_argument(
        "--head",
        type=Path,
        default=None,
        metavar="PATH",
        help="few-shot head from `sleeplm fewshot` (fewshot_head.safetensors or its folder)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the hypnogram: .csv (MNE-readable), .xml (NSRR) or .edf (EDF+)",
    )
    p.add_argument(
        "--all-channels",
        action="store_true",
        help="embed every channel, not only the staging montage (C3, C4, one EOG, chin EMG)",
    )
    p.set_defaults(func=run)


def stage_json(result: Any) -> dict[str, Any]:
    """The fixed JSON shape of a :class:`~sleeplm_core.results.StageResult`.

    ``staged_by`` is added only when a few-shot head gave the stages, so that zero-shot
    output keeps exactly its three keys.
    """
    out: dict[str, Any] = {
        "epochs": [asdict(e) for e in result.epochs],
        "channels_used": list(result.channels_used),
        "model": result.model,
    }
    staged_by = getattr(result, "staged_by", "prompts")
    if staged_by != "prompts":
        out["staged_by"] = staged_by
    return out


def format_stages(result: Any) -> str:
    """A readable table: epoch, onset, stage, confidence and the five probabilities."""
    from sleeplm_core.stages import SCORED_STAGES

    head = f"{'epoch':>5}  {'onset':>8}  {'stage':<5} {'conf':>5}  " + "  ".join(
        f"{s:>5}" for s in SCORED_STAGES
    )
    lines = [head, "-" * len(head)]
    for e in result.epochs:
        h, rem = divmod(int(e.onset_s), 3600)
        clock = f"{h}:{rem // 60:02d}:{rem % 60:02d}"
        probs = "  ".join(f"{e.proba[s]:5.2f}" for s in SCORED_STAGES)
        lines.append(f"{e.epoch:>5}  {clock:>8}  {e.stage:<5} {e.confidence:5.2f}  {probs}")
    lines.append(f"channels used: {', '.join(result.channels_used)}")
    lines.append(f"model: {result.model}")
    staged_by = getattr(result, "staged_by", "prompts")
    if staged_by != "prompts":
        lines.append(f"staged by: {staged_by} head")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm stage``; SleepLMError propagates (one line, exit 2 in main)."""
    from sleeplm_core.errors import CheckpointError, SleepLMError
    from sleeplm_core.fewshot import FewShotHead, head_file

    # the head first: a mistyped or corrupt one fails before the model loads
    head = None if args.head is None else FewShotHead.load(args.head)
    predictor = load_predictor(args)
    dim = int(predictor.model.cfg.embed_dim)
    if head is not None and head.embed_dim != dim:
        raise CheckpointError(
            head_file(args.head),
            f"few-shot head for {head.embed_dim}-dimensional embeddings, but "
            f"{predictor.model_id} gives {dim} (fit the head with the same checkpoint)",
        )
    out = getattr(args, "out", None)
    if out is not None and out.suffix.lower() not in (".csv", ".xml", ".edf"):
        raise SleepLMError(out, "cannot tell the hypnogram format: use .csv, .xml or .edf")
    with open_recording(args) as rec:
        from sleeplm_core.cli.progress import progress_bar

        with progress_bar(f"staging {rec.path.name}", quiet=args.quiet) as progress:
            if args.all_channels:
                emb = predictor.embed_recording(
                    rec, stride_s=STAGING_STRIDE_S, use_cache=False, progress=progress
                )
            else:
                emb = predictor.embed_for_staging(rec, progress=progress)
        staged = predictor.stage(emb, rec.channels_used(emb.mask), head=head)
        result = replace(staged, start=rec.start)
    if out is not None:
        result.save(out)
    if args.json:
        print(json.dumps(stage_json(result)))
    else:
        print(format_stages(result))
    return 0


if __name__ == "__main__":
    from sleeplm_core.cli.train import standalone

    sys.exit(standalone("stage", add_parser, sys.argv[1:]))
