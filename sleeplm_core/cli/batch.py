"""``sleeplm batch {embed,stage,caption} INPUTS... --out DIR``: a whole cohort, resumably.

INPUTS are recordings, folders (searched recursively for ``*.edf`` / ``*.bdf``), glob
patterns (quote them) or manifest CSVs with a ``path`` column and optional ``annotations``
and ``id`` columns (relative paths are relative to the CSV). A recording without an
``annotations`` entry gets the scoring file an NSRR cohort keeps for it, when there is one:
``<name>-nsrr.xml`` or ``<name>.xml`` beside it, or the same name under
``annotations-events-nsrr/`` where the path says ``edfs/`` (``polysomnography/edfs/shhs1/``
-> ``polysomnography/annotations-events-nsrr/shhs1/``).

Each night's results go to ``DIR/nights/<id>/``: ``embeddings.h5`` (one embedding per 30-s
epoch), for ``stage`` and ``caption`` also ``hypnogram.csv`` and ``hypnogram.xml`` (NSRR
XML), for ``caption`` ``captions.csv``, and last ``result.json``, written atomically: a night
with a ``result.json`` of the same task and model is done and skipped by the next run, so a
killed run resumes where it stopped. A night that fails leaves ``failed.json`` (its one-line
reason) and the cohort goes on. At the end the main process writes ``DIR/summary.parquet``
(``summary.csv`` without pyarrow: one row per night with the sleep statistics of the model's
hypnogram, the event indices of the scored events, and the agreement with the scored
hypnogram) and ``DIR/failures.csv``.

Usage::

    sleeplm batch stage /data/shhs/polysomnography --out results/shhs
    sleeplm batch embed "nights/*.edf" cohort.csv --out results --workers 4
    python -m sleeplm_core.cli.batch stage nights/ --out results
    torchrun --standalone --nproc_per_node=8 -m sleeplm_core.cli.batch stage cohort.csv --out res
    torchrun --nnodes=2 --node_rank=R --master_addr=HOST --master_port=PORT --nproc_per_node=8 -m
        sleeplm_core.cli.batch stage cohort.csv --out res      # on each of the two machines

Under ``torchrun`` rank ``r`` of ``W`` takes nights ``r, r + W, ...`` of the sorted list (on
GPU ``LOCAL_RANK``); ``--workers N`` splits a rank's share over N local processes. Ranks meet
once, at the end, through a gloo process group, and rank 0 writes the summary of every night
done so far in ``DIR``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sleeplm_core.cli.progress import wants_bar
from sleeplm_core.errors import SleepLMError

TASKS = ("embed", "stage", "caption")
RECORDING_SUFFIXES = (".edf", ".bdf")
RESULT = "result.json"
FAILED = "failed.json"


@dataclass(frozen=True)
class Night:
    """One recording of the cohort: a unique ``id``, the file, its scoring file if any."""

    id: str
    path: Path
    annotations: Path | None = None


# ------------------------------------------------------------------------------ inputs


def nsrr_annotations(edf: Path) -> Path | None:
    """The scoring file an NSRR-style cohort keeps for ``edf``, or None."""
    stem = edf.with_suffix("")
    candidates = [Path(f"{stem}-nsrr.xml"), Path(f"{stem}.xml"), Path(f"{edf}.xml")]
    parts = list(edf.parts)
    if "edfs" in parts:
        i = len(parts) - 1 - parts[::-1].index("edfs")
        xml_dir = Path(*parts[:i], "annotations-events-nsrr", *parts[i + 1 : -1])
        candidates.insert(0, xml_dir / f"{edf.stem}-nsrr.xml")
    return next((c for c in candidates if c.is_file()), None)


def _is_recording(p: Path) -> bool:
    # Sleep-EDF keeps its scoring in *-Hypnogram.edf, an annotation-only EDF+.
    return p.suffix.lower() in RECORDING_SUFFIXES and not p.stem.endswith("Hypnogram")


def _manifest(path: Path) -> list[tuple[Path, Path | None, str | None]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SleepLMError(path, f"cannot read the manifest: {exc}") from None
    if rows and "path" not in rows[0]:
        raise SleepLMError(path, "the manifest has no 'path' column")
    out: list[tuple[Path, Path | None, str | None]] = []
    for row in rows:
        if not (row.get("path") or "").strip():
            continue
        rec = path.parent / row["path"].strip()
        ann = (row.get("annotations") or "").strip()
        out.append((rec, path.parent / ann if ann else None, (row.get("id") or "").strip() or None))
    return out


def collect_nights(inputs: Sequence[str]) -> list[Night]:
    """Expand folders, globs and manifests into a sorted list of nights with unique ids.

    Raises
    ------
    SleepLMError
        When an input matches nothing or a manifest cannot be read.
    """
    import glob

    found: list[tuple[Path, Path | None, str | None]] = []
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and _is_recording(f))
            found += [(f, None, None) for f in files]
        elif p.is_file() and p.suffix.lower() == ".csv":
            found += _manifest(p)
        elif p.is_file():
            found.append((p, None, None))
        else:
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            files = [m for m in matches if m.is_file() and _is_recording(m)]
            if not files:
                raise SleepLMError(p, "matches no recording (EDF or BDF)")
            found += [(f, None, None) for f in files]
    nights: dict[str, Night] = {}
    seen: set[Path] = set()
    for path, ann, given in found:
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        base = given or path.stem
        nid, k = base, 1
        while nid in nights:
            k += 1
            nid = f"{base}~{k}"
        nights[nid] = Night(nid, path, ann if ann is not None else nsrr_annotations(path))
    return [nights[k] for k in sorted(nights)]


# ------------------------------------------------------------------------------ one night


def night_dir(out: Path, night: Night) -> Path:
    """The folder of ``night``'s results."""
    return out / "nights" / night.id


def is_done(out: Path, night: Night, task: str, model_id: str) -> bool:
    """Whether ``night`` already has a complete result of this task and model."""
    try:
        done = json.loads((night_dir(out, night) / RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(done.get("task") == task and done.get("model") == model_id)


def _write_json(path: Path, value: Any) -> None:
    from sleeplm_core.io.atomic import atomic_open

    with atomic_open(path) as fh:
        json.dump(value, fh, indent=1, allow_nan=True)


def _write_embeddings(path: Path, emb: Any, epoch_idx: Any) -> None:
    import h5py

    from sleeplm_core.io.atomic import atomic_open

    with atomic_open(path, "wb") as fh, h5py.File(fh, "w") as f:
        f.attrs["model"] = emb.model
        f.attrs["window_s"] = float(emb.window_s)
        f.create_dataset("onsets_s", data=emb.onsets_s[epoch_idx])
        f.create_dataset("embeddings", data=emb.embeddings[epoch_idx])
        f.create_dataset("mask", data=emb.mask)


def _write_hypnogram(folder: Path, staged: Any) -> None:
    from sleeplm_core.io.annotations import write_nsrr_xml
    from sleeplm_core.io.atomic import atomic_open
    from sleeplm_core.io.hypnogram import Hypnogram
    from sleeplm_core.stages import SCORED_STAGES

    with atomic_open(folder / "hypnogram.csv", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "onset_s", "stage", "confidence", *(f"p_{s}" for s in SCORED_STAGES)])
        for e in staged.epochs:
            probs = [f"{e.proba[s]:.4f}" for s in SCORED_STAGES]
            w.writerow([e.epoch, f"{e.onset_s:g}", e.stage, f"{e.confidence:.4f}", *probs])
    hyp = Hypnogram([e.stage for e in staged.epochs])
    write_nsrr_xml(hyp.to_annotations(), folder / "hypnogram.xml")


def _write_captions(folder: Path, predictor: Any, rec: Any) -> int:
    from sleeplm_core.io.atomic import atomic_open

    n = 0
    with atomic_open(folder / "captions.csv", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["onset_s", "duration_s", "modality", "text"])
        for start in range(0, int(rec.duration_s), 3600):  # an hour of epochs at a time
            for c in predictor.caption(rec, float(start), float(start + 3600)):
                w.writerow([f"{c.onset_s:g}", f"{c.duration_s:g}", c.modality, c.text])
                n += 1
    return n


def process_night(predictor: Any, night: Night, task: str, out: Path) -> dict[str, Any]:
    """Run ``task`` on one night, write its files, and return its summary row.

    Raises
    ------
    SleepLMError
        For a recording or scoring file that cannot be used.
    """
    import numpy as np

    from sleeplm_core.eval.metrics import staging_scores
    from sleeplm_core.inference import STAGING_STRIDE_S
    from sleeplm_core.io.hypnogram import Hypnogram
    from sleeplm_core.io.indices import event_indices
    from sleeplm_core.io.recording import Recording
    from sleeplm_core.stages import EPOCH_S

    c0, t0 = time.process_time(), time.perf_counter()
    folder = night_dir(out, night)
    folder.mkdir(parents=True, exist_ok=True)
    row: dict[str, Any] = {"id": night.id, "path": str(night.path), "task": task,
                           "model": predictor.model_id,
                           "annotations": str(night.annotations or "")}  # fmt: skip
    with Recording.open(night.path, annotations=night.annotations) as rec:
        if task == "stage":  # the staging montage (EEG, EOG, chin EMG) is all it needs
            emb = predictor.embed_for_staging(rec, use_cache=False)
        else:
            emb = predictor.embed_recording(rec, stride_s=STAGING_STRIDE_S, use_cache=False)
        used = rec.channels_used(emb.mask)
        on_grid = np.flatnonzero(np.isclose(np.mod(emb.onsets_s, EPOCH_S), 0.0))
        _write_embeddings(folder / "embeddings.h5", emb, on_grid)
        row.update(duration_s=float(rec.duration_s), n_epochs=int(on_grid.size),
                   channels_used=" ".join(used))  # fmt: skip
        if task in ("stage", "caption"):
            staged = predictor.stage(emb, used)
            _write_hypnogram(folder, staged)
            predicted = Hypnogram([e.stage for e in staged.epochs])
            row.update({f"pred_{k}": v for k, v in predicted.sleep_statistics().items()})
            scored = rec.hypnogram
            events = [a for a in rec.annotations if not a.is_stage]
            if scored is not None:
                n = min(len(scored), len(predicted))
                sc = staging_scores(list(scored.stages[:n]), list(predicted.stages[:n]))
                row.update(agree_n=sc.n, agree_accuracy=sc.accuracy, agree_kappa=sc.kappa,
                           agree_macro_f1=sc.macro_f1)  # fmt: skip
                row.update({f"scored_{k}": v for k, v in scored.sleep_statistics().items()})
            if events:  # indices of the scored events, over the scored (else model's) sleep
                row.update(event_indices(events, scored if scored is not None else predicted))
        if task == "caption":
            row["n_captions"] = _write_captions(folder, predictor, rec)
    row["cpu_s"] = time.process_time() - c0
    row["wall_s"] = time.perf_counter() - t0
    (folder / FAILED).unlink(missing_ok=True)
    _write_json(folder / RESULT, {"task": task, "model": predictor.model_id, "row": row})
    return row


def _record_failure(out: Path, night: Night, task: str, problem: str) -> None:
    folder = night_dir(out, night)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / FAILED, {"task": task, "path": str(night.path), "problem": problem})
    except (OSError, SleepLMError):
        pass  # the failure is still printed and counted


def run_night(predictor: Any, night: Night, task: str, out: Path) -> str | None:
    """:func:`process_night` that never raises: the one-line problem, or None when done."""
    try:
        process_night(predictor, night, task, out)
        return None
    except SleepLMError as exc:
        problem = exc.one_line()
    except Exception as exc:  # noqa: BLE001 - a bad night must not stop the cohort
        problem = f"{night.path}: {type(exc).__name__}: {exc}"
    _record_failure(out, night, task, problem)
    return problem


# ------------------------------------------------------------------------------ processes

_WORKER: dict[str, Any] = {}


def _threads(workers: int, local_world: int) -> int:
    """Torch threads per process: the cores shared out among this machine's processes."""
    return max(1, (os.cpu_count() or 1) // max(1, workers * local_world))


def _load(checkpoint: Path | None, device: str | None, threads: int) -> Any:
    import torch

    from sleeplm_core.inference import Predictor

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(threads)
    return Predictor.load(checkpoint, device=device)


def _init_worker(checkpoint: Path | None, device: str | None, threads: int) -> None:
    _WORKER["predictor"] = _load(checkpoint, device, threads)


def _work(night: Night, task: str, out: Path) -> tuple[Night, str | None]:
    return night, run_night(_WORKER["predictor"], night, task, out)


def _progress(total: int, enabled: bool, position: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="night", disable=not enabled, position=position,
                dynamic_ncols=True, file=sys.stderr)  # fmt: skip


def run_share(
    nights: Sequence[Night],
    task: str,
    out: Path,
    *,
    checkpoint: Path | None,
    device: str | None,
    workers: int,
    threads: int,
    progress: bool,
    position: int = 0,
) -> tuple[int, list[tuple[Night, str]]]:
    """Process ``nights`` (those not yet done) on ``workers`` local processes.

    Returns
    -------
    (int, list of (Night, str))
        How many nights were skipped as done, and the failures with their problem.
    """
    predictor = _load(checkpoint, device, threads)
    todo = [n for n in nights if not is_done(out, n, task, predictor.model_id)]
    skipped = len(nights) - len(todo)
    failures: list[tuple[Night, str]] = []
    bar = _progress(len(nights), progress, position)
    bar.update(skipped)
    if workers <= 1 or len(todo) <= 1:
        for night in todo:
            problem = run_night(predictor, night, task, out)
            if problem is not None:
                failures.append((night, problem))
            bar.update(1)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        del predictor  # each worker loads its own
        with ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(checkpoint, device, threads),
        ) as pool:
            futures = [pool.submit(_work, n, task, out) for n in todo]
            for fut in as_completed(futures):
                try:
                    night, problem = fut.result()
                except Exception as exc:  # noqa: BLE001 - a dead worker: its night failed
                    night = todo[futures.index(fut)]
                    problem = f"{night.path}: worker process failed: {type(exc).__name__}"
                    _record_failure(out, night, task, problem)
                if problem is not None:
                    failures.append((night, problem))
                bar.update(1)
    bar.close()
    return skipped, failures


# ------------------------------------------------------------------------------ summary


def read_rows(out: Path, nights: Iterable[Night], task: str) -> list[dict[str, Any]]:
    """The summary rows of the nights done for ``task`` (any model), in ``nights`` order."""
    rows = []
    for n in nights:
        try:
            done = json.loads((night_dir(out, n) / RESULT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if done.get("task") == task:
            rows.append(dict(done["row"]))
    return rows


def read_failures(out: Path, nights: Iterable[Night]) -> list[dict[str, str]]:
    """``id``, ``path``, ``problem`` of the nights whose last attempt failed."""
    rows = []
    for n in nights:
        try:
            failed = json.loads((night_dir(out, n) / FAILED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows.append({"id": n.id, "path": str(n.path), "problem": str(failed.get("problem"))})
    return rows


def write_summary(out: Path, rows: list[dict[str, Any]], failures: list[dict[str, str]]) -> Path:
    """Write ``summary.parquet`` (``summary.csv`` without pyarrow) and ``failures.csv``."""
    from sleeplm_core.io.atomic import atomic_open

    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = [{c: r.get(c) for c in columns} for r in rows]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pa = None
    if pa is not None:
        target = out / "summary.parquet"
        with atomic_open(target, "wb") as fh:
            pq.write_table(pa.Table.from_pylist(table), fh)
    else:
        target = out / "summary.csv"
        with atomic_open(target, newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns)
            w.writeheader()
            for r in table:
                w.writerow({k: _cell(v) for k, v in r.items()})
    with atomic_open(out / "failures.csv", newline="") as fh:
        w2 = csv.DictWriter(fh, fieldnames=["id", "path", "problem"])
        w2.writeheader()
        w2.writerows(failures)
    return target


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return "" if v is None else v


# ------------------------------------------------------------------------------ the command


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm batch``."""
    p = subparsers.add_parser("batch", help="embed, stage or caption a cohort (resumable)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("task", choices=TASKS, help="what to compute for each night")
    p.add_argument("inputs", nargs="+", help="recordings, folders, glob patterns or manifest CSVs")
    p.add_argument("--out", type=Path, required=True, help="results folder (created)")
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the bundled model")
    p.add_argument("--device", default=None, help="force a device (cpu, cuda); default per rank")
    p.add_argument("--workers", type=int, default=1, help="local processes per rank (1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default: cores / processes)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _dist_init() -> tuple[int, int, int]:
    """Rank, world size and local world size; a gloo group when torchrun started several."""
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    if world > 1:
        from datetime import timedelta

        import torch.distributed as dist

        if not dist.is_initialized():
            # The ranks meet only at the end; a cohort may take days.
            dist.init_process_group("gloo", rank=rank, world_size=world,
                                    timeout=timedelta(days=7))  # fmt: skip
    return rank, world, local_world


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm batch``; 0 when every night is done, 1 when some failed."""
    if args.workers < 1:
        raise SleepLMError(None, "--workers must be at least 1")
    nights = collect_nights(args.inputs)
    if not nights:
        raise SleepLMError(None, "no recording found in the inputs")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SleepLMError(out, f"cannot create the results folder ({exc.strerror})") from None
    rank, world, local_world = _dist_init()
    device = args.device
    if device is None and world > 1:
        device = _rank_device(int(os.environ.get("LOCAL_RANK", "0")))
    threads = args.threads or _threads(args.workers, local_world)
    share = nights[rank::world]
    skipped, failures = run_share(
        share, args.task, out, checkpoint=args.checkpoint, device=device, workers=args.workers,
        threads=threads, position=rank if world > 1 else 0,
        progress=not args.no_progress and wants_bar(getattr(args, "quiet", False)),
    )  # fmt: skip
    for _night, problem in failures:
        print(f"sleeplm batch: failed: {problem}", file=sys.stderr)
    n_failed = len(failures)
    if world > 1:
        import torch
        import torch.distributed as dist

        count = torch.tensor([n_failed], dtype=torch.int64)
        dist.all_reduce(count)  # also the barrier: every rank's results are on disk
        n_failed = int(count.item())
        dist.destroy_process_group()
    if rank == 0:
        rows = read_rows(out, nights, args.task)
        target = write_summary(out, rows, read_failures(out, nights))
        print(f"{len(rows)} of {len(nights)} nights done ({skipped} were already done on rank 0, "
              f"{n_failed} failed); summary: {target}")  # fmt: skip
    return 1 if n_failed else 0


def _rank_device(local_rank: int) -> str | None:
    import torch

    return f"cuda:{local_rank}" if torch.cuda.is_available() else None


if __name__ == "__main__":
    from sleeplm_core.cli.train import standalone

    sys.exit(standalone("batch", add_parser, sys.argv[1:]))
