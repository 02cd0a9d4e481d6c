"""``sleeplm caption FILE``: generated captions for an epoch, a span, or the whole night.

Usage::

    python -m sleeplm_core.cli.caption night.edf --epoch 120
    sleeplm caption night.edf --start 3600 --stop 3690 --modality respiratory --json
    sleeplm caption night.edf --epoch 5 --prompt "the airflow"
    sleeplm caption night.edf --night

``--epoch N`` and ``--start S --stop S`` decode one caption per 30-s epoch and per modality
whose channels are present (``stage_event`` first), at level ``epoch``.

``--night`` gives one caption at level ``night``, modality ``summary``. The decoder has a
``night`` prefix in its vocabulary, but it is trained on nothing longer than one 30-s window,
so a night-level text cannot be decoded from the signal. Instead the summary is composed from
the model's own outputs on this night: the zero-shot hypnogram (:meth:`Predictor.stage`, made
into a :class:`~sleeplm_core.io.hypnogram.Hypnogram` for its standard statistics) and the
number of segments :meth:`Predictor.search` finds over the calibrated threshold for a few event
queries. The file's annotations and scored hypnogram are never read for it, and the text says
that it is a model estimate.

JSON (fixed shape)::

    {"captions": [{"onset_s": ..., "duration_s": ..., "level": "epoch", "modality": "brain",
                   "text": "...", "checks": [{"sentence": "...", "status": "agrees",
                   "reason": ""}, ...]}, ...]}

Every generated sentence is checked against the epoch's measured features
(:mod:`sleeplm_core.grounding`): ``checks`` gives each sentence's status, and the text output
marks a sentence that disagrees (``[✗ reason]``) or could not be checked (``[? reason]``). A
modality without channels in the file answers "no <modality> channels in this recording"
without decoding.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sleeplm_core.cli.embed import add_common_arguments, embed, load_predictor, open_recording
from sleeplm_core.errors import SleepLMError

if TYPE_CHECKING:
    from sleeplm_core.inference import Predictor
    from sleeplm_core.results import Caption, NightEmbeddings

SUMMARY_QUERIES: tuple[tuple[str, str], ...] = (
    ("obstructive apnea", "apnea"),
    ("hypopnea", "hypopnea"),
    ("oxygen desaturation", "desaturation"),
    ("arousal", "arousal"),
    ("limb movement", "limb movement"),
    ("sleep spindle", "spindle"),
)
"""(query, word) pairs counted in the night summary."""

EPOCH_MODALITIES: tuple[str, ...] = ("stage_event", "brain", "heart", "respiratory", "somatic")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm caption``."""
    p = subparsers.add_parser("caption", help="generated captions (epoch, span or night)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_arguments(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--epoch", type=int, metavar="N", help="the 30-s epoch N (from 0)")
    where.add_argument("--start", type=float, metavar="S", help="span start in seconds")
    where.add_argument("--night", action="store_true", help="a night-level model summary")
    p.add_argument("--stop", type=float, metavar="S", help="span stop in seconds (with --start)")
    p.add_argument(
        "--modality",
        action="append",
        choices=EPOCH_MODALITIES,
        help="only this modality (repeatable); default: stage_event and every present one",
    )
    p.add_argument("--prompt", default=None, help="text the captions continue")
    p.add_argument("--beam", type=int, default=3, help="beam width; 1 is greedy (3)")
    p.set_defaults(func=run)


def _fmt_min(minutes: float) -> str:
    if math.isnan(minutes):
        return "n/a"
    return f"{minutes / 60:.1f} h" if minutes >= 90 else f"{minutes:.0f} min"


def night_summary(predictor: Predictor, emb: NightEmbeddings, duration_s: float) -> Caption:
    """Compose the ``night``/``summary`` caption from the model's staging and search counts."""
    from sleeplm_core.io.hypnogram import Hypnogram
    from sleeplm_core.results import Caption

    staged = predictor.stage(emb)
    if not staged.epochs:
        raise SleepLMError(None, "the recording is shorter than one 30-s epoch")
    stats = Hypnogram(staged.stages()).sleep_statistics()
    parts = [
        f"model estimate (zero-shot, not the scored annotations): "
        f"{_fmt_min(stats['TIB'])} analysed, total sleep {_fmt_min(stats['TST'])}"
    ]
    if stats["TST"] > 0:
        parts.append(
            f"sleep efficiency {stats['SE']:.0f}%, sleep onset after {_fmt_min(stats['SOL'])}, "
            f"wake after sleep onset {_fmt_min(stats['WASO'])}"
        )
        parts.append(
            "; ".join(f"{s} {stats['%' + s]:.0f}%" for s in ("N1", "N2", "N3", "REM")) + " of sleep"
        )
    counts = []
    for query, word in SUMMARY_QUERIES:
        n = len(predictor.search(emb, query, top=100_000).segments)
        counts.append(f"{n} {word}{'' if n == 1 else 's'}")
    parts.append(f"segments matching (threshold {predictor.threshold:.2f}): " + ", ".join(counts))
    n_ep = len(staged.epochs)
    return Caption(0.0, min(duration_s, n_ep * 30.0), "night", "summary", ". ".join(parts) + ".")


def captions_json(captions: list[Caption]) -> dict[str, Any]:
    """The fixed JSON shape."""
    return {"captions": [asdict(c) for c in captions]}


def format_captions(captions: list[Caption]) -> str:
    """One block per caption: time span, level/modality, text."""
    lines = []
    for c in captions:
        h, rem = divmod(int(c.onset_s), 3600)
        clock = f"{h}:{rem // 60:02d}:{rem % 60:02d}"
        marks = {"disagrees": "✗", "absent": "✗", "unchecked": "?"}
        text = " ".join(
            ch.sentence + (f" [{marks[ch.status]} {ch.reason}]" if ch.status in marks else "")
            for ch in c.checks
        ) or c.text
        lines.append(f"{clock} +{c.duration_s:g}s  {c.level}/{c.modality}: {text}")
    return "\n".join(lines)


def _span(args: argparse.Namespace, duration_s: float) -> tuple[float, float]:
    if args.start is not None:
        stop = args.stop if args.stop is not None else args.start + 30.0
        start = args.start
    else:
        if args.stop is not None:
            raise SleepLMError(None, "--stop needs --start")
        epoch = args.epoch if args.epoch is not None else 0
        if epoch < 0:
            raise SleepLMError(None, f"--epoch must be 0 or more, got {epoch}")
        start, stop = epoch * 30.0, (epoch + 1) * 30.0
    if stop <= start:
        raise SleepLMError(None, f"--stop ({stop:g}) must be after --start ({start:g})")
    n_full = int(duration_s // 30.0)
    if start < 0 or start >= n_full * 30.0:
        raise SleepLMError(
            args.file,
            f"{start:g} s is outside the recording's {n_full} full 30-s epochs ({duration_s:g} s)",
        )
    return start, min(stop, n_full * 30.0)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm caption``; SleepLMError propagates (one line, exit 2 in main)."""
    if args.night and (args.stop is not None or args.modality or args.prompt):
        raise SleepLMError(None, "--night takes no --stop, --modality or --prompt")
    if args.beam < 1:
        raise SleepLMError(None, f"--beam must be at least 1, got {args.beam}")
    predictor = load_predictor(args)
    with open_recording(args) as rec:
        if args.night:
            emb, _ = embed(predictor, rec, quiet=getattr(args, "quiet", False))
            captions = [night_summary(predictor, emb, rec.duration_s)]
        else:
            start, stop = _span(args, rec.duration_s)
            captions = predictor.caption(
                rec, start, stop, modalities=args.modality, prompt=args.prompt, beam=args.beam
            )
    if args.json:
        print(json.dumps(captions_json(captions)))
    else:
        print(format_captions(captions))
    return 0


if __name__ == "__main__":
    from sleeplm_core.cli.train import standalone

    sys.exit(standalone("caption", add_parser, sys.argv[1:]))
