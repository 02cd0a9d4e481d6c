"""``sleeplm search FILE "free text"``: find the stretches of a night that match a description.

Each 30-s window (15 s apart) of the embedded night is scored against the query; windows at
or over the match threshold are merged into segments, best first. The threshold is the one
calibrated into the checkpoint (``--min-score`` overrides it). When nothing passes, nothing is
invented: the command says so and shows the best scores it saw (on stderr, or as the extra key
``best_scores`` with ``--json``). Each segment gets a generated ``stage_event`` caption of its
first 30 s (``--no-caption`` skips the decoding).

Usage::

    python -m sleeplm_core.cli.search night.edf "obstructive apnea with desaturation"
    sleeplm search night.edf "sleep spindle" --top 20 --min-score 0.3 --json

JSON (fixed shape)::

    {"query": "...", "segments": [{"onset_s": ..., "duration_s": ..., "score": ...,
                                   "channel_types": [...], "caption": "..."}, ...]}
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from sleeplm_core.cli.embed import add_common_arguments, embed, load_predictor, open_recording
from sleeplm_core.errors import SleepLMError

if TYPE_CHECKING:
    from sleeplm_core.inference import Predictor
    from sleeplm_core.io.recording import Recording
    from sleeplm_core.results import SearchResult, Segment


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm search``."""
    p = subparsers.add_parser("search", help="find segments matching a free-text description",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_arguments(p)
    p.add_argument("query", help='what to look for, e.g. "obstructive apnea"')
    p.add_argument("--top", type=int, default=10, help="at most this many segments (10)")
    p.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="match threshold: a match probability (0-1) for event queries, a cosine "
        "similarity for stage-like ones; default: the checkpoint's calibrated one",
    )
    p.add_argument("--no-caption", action="store_true", help="do not caption the segments")
    p.set_defaults(func=run)


def caption_segments(
    predictor: Predictor, rec: Recording, segments: list[Segment]
) -> list[Segment]:
    """Add a greedy ``stage_event`` caption of each segment's first 30 s (one decoder batch)."""
    import numpy as np

    from sleeplm_core.inference import WINDOW_N, WINDOW_S

    if not segments:
        return segments
    windows = []
    masks = []
    for s in segments:
        start = min(s.onset_s, max(0.0, rec.duration_s - WINDOW_S))
        win = rec.canonical(start, start + WINDOW_S)
        masks.append(win.mask)
        data = win.data[:, :WINDOW_N]
        if data.shape[1] < WINDOW_N:
            data = np.pad(data, ((0, 0), (0, WINDOW_N - data.shape[1])))
        windows.append(data)
    texts = predictor.generate(np.stack(windows), np.stack(masks), "stage_event", beam=1)
    return [replace(s, caption=t) for s, t in zip(segments, texts, strict=True)]


def search_json(result: SearchResult) -> dict[str, Any]:
    """The fixed JSON shape; ``best_scores`` is added only when no segment passed."""
    out: dict[str, Any] = {
        "query": result.query,
        "segments": [asdict(s) for s in result.segments],
    }
    if not result.segments:
        out["best_scores"] = [round(float(b), 4) for b in result.best_scores]
        out["threshold"] = result.threshold
    if result.note:
        out["note"] = result.note
    return out


def nothing_matched(result: SearchResult, calibrated: bool = True) -> str:
    """The one-line explanation printed when no window passed the threshold."""
    if result.note:
        return result.note
    best = ", ".join(f"{b:.3f}" for b in result.best_scores) or "none"
    which = "" if calibrated else " (the default: this checkpoint carries no calibrated one)"
    if any(b >= result.threshold for b in result.best_scores):  # passed, but only briefly
        return (
            f"nothing matched {result.query!r} long enough: the best scores ({best}) passed "
            f"the threshold {result.threshold:.3f}{which} only for moments shorter than the "
            "minimum duration of a match; try --min-score to lower it"
        )
    return (
        f"nothing matched {result.query!r} well: no window reached the threshold "
        f"{result.threshold:.3f}{which} (best scores: {best}); try --min-score to lower it"
    )


def format_segments(result: SearchResult) -> str:
    """A readable table of the segments, best first."""
    head = f"{'#':>3}  {'onset':>8}  {'dur s':>6}  {'score':>6}  {'channels':<22} caption"
    lines = [f"query: {result.query}  (threshold {result.threshold:.3f})", head, "-" * len(head)]
    for i, s in enumerate(result.segments, 1):
        h, rem = divmod(int(s.onset_s), 3600)
        clock = f"{h}:{rem // 60:02d}:{rem % 60:02d}"
        types = ",".join(s.channel_types)
        lines.append(
            f"{i:>3}  {clock:>8}  {s.duration_s:6.0f}  {s.score:6.3f}  {types:<22} {s.caption}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm search``; SleepLMError propagates (one line, exit 2 in main)."""
    if not args.query.strip():
        raise SleepLMError(None, "the query is empty: type what to look for")
    if args.top < 1:
        raise SleepLMError(None, f"--top must be at least 1, got {args.top}")
    predictor = load_predictor(args)
    with open_recording(args) as rec:
        emb, _ = embed(predictor, rec, quiet=getattr(args, "quiet", False))
        result = predictor.search(emb, args.query, top=args.top, min_score=args.min_score)
        if result.segments and not args.no_caption:
            result = replace(result, segments=caption_segments(predictor, rec, result.segments))
    if args.json:
        print(json.dumps(search_json(result)))
    elif result.segments:
        print(format_segments(result))
    if not result.segments:
        calibrated = bool(getattr(predictor, "calibrated", True)) or args.min_score is not None
        print(f"sleeplm: {nothing_matched(result, calibrated)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from sleeplm_core.cli.train import standalone

    sys.exit(standalone("search", add_parser, sys.argv[1:]))
