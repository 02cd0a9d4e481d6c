"""``sleeplm embed FILE``: compute (or refresh) a night's window embeddings and cache them.

The embeddings go to the HDF5 sidecar ``FILE.sleeplm.h5`` (or the user cache folder when the
recording's folder is read-only, see :mod:`sleeplm_core.embedding_cache`); ``stage``,
``search`` and ``caption --night`` then reuse them. A cache written for another file content,
model or format is rebuilt, and so is an unreadable one, with a note on stderr.

Usage::

    python -m sleeplm_core.cli.embed night.edf
    sleeplm embed night.edf --checkpoint runs/tiny --json
    sleeplm embed night.edf --force          # recompute even when the cache is valid

This module also holds the helpers the other inference commands share (``stage``, ``search``,
``caption``): the common flags, loading the predictor and opening and embedding a recording.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sleeplm_core.errors import RecordingError, SleepLMError

if TYPE_CHECKING:
    from sleeplm_core.inference import Predictor
    from sleeplm_core.io.recording import Recording
    from sleeplm_core.results import NightEmbeddings

log = logging.getLogger(__name__)

STRIDE_S = 15.0  # = sleeplm_core.inference.STRIDE_S (this module loads without torch)
"""Seconds between window onsets for the cached embeddings (a divisor of 30 s)."""
STAGING_STRIDE_S = 30.0  # = sleeplm_core.inference.STAGING_STRIDE_S
"""One window per epoch: what ``sleeplm stage`` computes when no search cache is there."""


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    """``FILE``, ``--checkpoint``, ``--annotations``, ``--json``, ``--device``."""
    p.add_argument("file", type=Path, help="recording (EDF, EDF+, BDF)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="checkpoint directory or file (default: the bundled model)",
    )
    p.add_argument("--annotations", type=Path, default=None, help="sidecar annotation file")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--device", default=None, help="force a device (cpu, cuda:0, mps)")


def load_predictor(args: argparse.Namespace) -> Predictor:
    """Load ``args.checkpoint`` (bundled by default); errors are one-line CheckpointErrors."""
    from sleeplm_core.inference import Predictor

    t0 = time.perf_counter()
    predictor = Predictor.load(args.checkpoint, device=args.device)
    log.info("loaded %s on %s in %.1f s (%s)", predictor.model_id, predictor.device,
             time.perf_counter() - t0, args.checkpoint or "bundled checkpoint")  # fmt: skip
    return predictor


def open_recording(args: argparse.Namespace) -> Recording:
    """Open ``args.file``; refuse a recording the model has no input for."""
    from sleeplm_core.io.recording import Recording

    rec = Recording.open(args.file, annotations=args.annotations)
    log.info("opened %s: %d channels, %.0f s", args.file, len(rec.ch_names), rec.duration_s)
    if not any(rec.canonical_sources):
        rec.close()
        raise RecordingError(
            args.file,
            "no channel the model can use (needs EEG, EOG, EMG, ECG, airflow, effort, SpO2 "
            f"or position; found {', '.join(rec.ch_names) or 'none'})",
        )
    return rec


def cache_state(
    recording: Path, model_id: str, stride_s: float = STRIDE_S, weights: str = ""
) -> str:
    """State of the sidecar for this model: ``missing``, ``valid``, ``stale`` or ``corrupt``.

    ``stale`` covers another file content (fingerprint), another cache format or
    preprocessing version, or a cache that holds only other models, weights or strides.
    """
    from sleeplm_core import embedding_cache as ec
    from sleeplm_core.inference import WINDOW_S

    key = ec.window_key(model_id, WINDOW_S, stride_s, weights)
    return ec.state(ec.cache_path(recording), recording, key)


_NOTES = {
    "stale": "note: the embedding cache {path} was made for another file version or model; rebuilt",
    "corrupt": "note: the embedding cache {path} could not be read; rebuilt",
}


@dataclass(frozen=True)
class EmbedReport:
    """What :func:`embed` did: where the cache is, its state before, windows, seconds."""

    cache: Path
    before: str
    windows: int
    seconds: float
    computed: bool


def embed(
    predictor: Predictor,
    rec: Recording,
    *,
    force: bool = False,
    quiet: bool = False,
    stride_s: float = STRIDE_S,
) -> tuple[NightEmbeddings, EmbedReport]:
    """Embed ``rec`` through the sidecar cache; a stale or corrupt cache gets a note on stderr.

    A tqdm bar shows the windows done while the night is computed (not with ``quiet``, nor
    when stderr is not a terminal).
    """
    from sleeplm_core import embedding_cache as ec
    from sleeplm_core.cli.progress import progress_bar

    before = cache_state(rec.path, predictor.model_id, stride_s, weights=predictor.weights_id)
    if before in _NOTES and not quiet:
        print(_NOTES[before].format(path=ec.cache_path(rec.path)), file=sys.stderr)
    t0 = time.perf_counter()
    if force:  # drop the sidecar so that the Predictor recomputes and writes every cache it keeps
        try:
            ec.cache_path(rec.path).unlink(missing_ok=True)
        except OSError as exc:
            raise SleepLMError(
                ec.cache_path(rec.path), f"cannot remove the cache ({exc})"
            ) from None
    reads = _ReadCounter(rec)
    with progress_bar(f"embedding {rec.path.name}", quiet=quiet) as progress:
        emb = predictor.embed_recording(reads, stride_s=stride_s, progress=progress)
    seconds = time.perf_counter() - t0
    log.info("%s windows of %s in %.1f s (%s; cache was %s)", len(emb.onsets_s), rec.path.name,
             seconds, "computed" if reads.n else "from the cache", before)  # fmt: skip
    report = EmbedReport(ec.cache_path(rec.path), before, len(emb.onsets_s), seconds, reads.n > 0)
    return emb, report


class _ReadCounter:
    """A recording stand-in that counts signal reads: the Predictor computed iff it read.

    The Predictor may keep more than the embedding sidecar (e.g. dense features), so whether
    it recomputed is observed rather than predicted from :func:`cache_state`.
    """

    def __init__(self, rec: Recording) -> None:
        self._rec = rec
        self.n = 0

    def canonical(self, start_s: float, stop_s: float, slots: Any = None) -> Any:
        self.n += 1
        return self._rec.canonical(start_s, stop_s, slots)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rec, name)


# ------------------------------------------------------------------------------ the command


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm embed``."""
    p = subparsers.add_parser("embed", help="compute and cache a night's embeddings",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_common_arguments(p)
    p.add_argument("--force", action="store_true", help="recompute even when the cache is valid")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm embed``; SleepLMError propagates (one line, exit 2 in main)."""
    predictor = load_predictor(args)
    with open_recording(args) as rec:
        emb, rep = embed(predictor, rec, force=args.force, quiet=getattr(args, "quiet", False))
    out: dict[str, Any] = {
        "cache": str(rep.cache),
        "windows": rep.windows,
        "window_s": float(emb.window_s),
        "stride_s": STRIDE_S,
        "seconds": round(rep.seconds, 3),
        "computed": rep.computed,
        "cache_before": rep.before,
        "model": predictor.model_id,
    }
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        how = "computed" if rep.computed else "already up to date"
        print(
            f"{rep.windows} windows ({emb.window_s:g} s every {STRIDE_S:g} s) {how} in "
            f"{rep.seconds:.1f} s with {predictor.model_id}\ncache: {rep.cache}"
        )
    return 0


if __name__ == "__main__":
    from sleeplm_core.cli.train import standalone

    sys.exit(standalone("embed", add_parser, sys.argv[1:]))
