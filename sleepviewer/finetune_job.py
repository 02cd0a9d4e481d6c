"""Fine-tuning in the worker thread: shards from the user's scored files, then training.

:func:`run_finetune` is called by :class:`sleepviewer.workers.InferenceWorker`; it builds
temporary shards from the scored recordings (never writing to them), trains with
:func:`sleeplm_core.train.loop.train` (full) or fits a few-shot stage head, and writes a *new*
checkpoint folder. Cancel is checked between optimizer steps; a cancelled or failed run keeps
its last complete checkpoint (or removes the folder when there is none). Like ``workers.py``,
this module may import torch and ``sleeplm_core.train``, lazily.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sleeplm_core.errors import SleepLMError
from sleeplm_core.io.annotations import Annotation
from sleepviewer.model_messages import (
    FinetuneProgress,
    FinetuneRequest,
    FinetuneResponse,
    FinetuneSource,
)
from sleepviewer.model_registry import checkpoint_steps, is_inside, write_status
from sleepviewer.worker_errors import Cancelled, one_line

Report = Callable[[FinetuneProgress], None]


class _Rescored:
    """A recording seen with the viewer's scoring instead of the file's (read-only view)."""

    def __init__(self, rec: Any, annotations: Sequence[tuple[float, float, str, str | None]]):
        from sleeplm_core.io.annotations import Annotations

        self._rec = rec
        self.annotations = Annotations(Annotation(*a) for a in annotations)

    @property
    def hypnogram(self) -> Any:
        from sleeplm_core.io.hypnogram import Hypnogram

        return Hypnogram.from_annotations(self.annotations, self._rec.duration_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rec, name)


def build_finetune_shards(
    rid: int, sources: Sequence[FinetuneSource], out: Path, report: Report,
    should_stop: Callable[[], bool],
) -> int:
    """One shard per source in ``out`` (the user's files are only read); total epochs."""
    from sleeplm_core.data.shards import write_shard
    from sleeplm_core.io.recording import Recording

    n = 0
    for i, src in enumerate(sources):
        if should_stop():
            raise Cancelled
        report(FinetuneProgress(rid, "shards", i, len(sources)))
        sidecar = src.sidecar if src.annotations is None else None
        rec = Recording.open(src.path, annotations=sidecar)
        try:
            view = rec if src.annotations is None else _Rescored(rec, src.annotations)
            record_id = f"{i:03d}-{Path(src.path).stem}"
            n += write_shard(view, out / f"{record_id}.h5", record_id=record_id,  # type: ignore[arg-type]
                             source=str(src.path), annotation_file=str(sidecar or ""))
        finally:
            rec.close()
    report(FinetuneProgress(rid, "shards", len(sources), len(sources)))
    return n


def run_finetune(
    req: FinetuneRequest, report: Report, should_stop: Callable[[], bool]
) -> FinetuneResponse:
    """Fine-tune ``req.base`` on ``req.sources`` into the new folder ``req.out_dir``.

    Runs in the calling thread. ``should_stop()`` is asked between optimizer steps (and
    between shards and embedding chunks). When the run stops early (cancelled, out of
    memory, any error) the folder keeps its last complete checkpoint with a ``finetune.json``
    that says so, or is removed when there is none; the exception is re-raised.
    """
    from sleeplm_core.train import checkpoint as ckpt

    out = Path(req.out_dir)
    if out.exists():
        raise SleepLMError(out, "the new model folder exists already")
    base_dir, base_step = ckpt.resolve(req.base)
    if is_inside(out, base_dir) or is_inside(base_dir, out):
        raise SleepLMError(out, "a fine-tune never writes into its base model's folder")
    base_meta = ckpt.load_meta(base_dir / f"meta_{base_step:06d}.json")
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="sleeplm-finetune-"))
    try:
        n_epochs = build_finetune_shards(req.request_id, req.sources, tmp, report, should_stop)
        info = {
            "mode": req.mode,
            "base_model": str(base_meta.get("config", {}).get("name", "sleeplm")),
            "base_checkpoint": f"{base_dir}/meta_{base_step:06d}.json",
            "recordings": [s.path for s in req.sources],
            "viewer_scoring": [s.annotations is not None for s in req.sources],
            "n_epochs": n_epochs,
        }
        name = f"{info['base_model']}+{out.name}"  # a new cache key for its embeddings
        if req.mode == "fewshot":
            return _fewshot(req, base_dir, base_step, base_meta, tmp, info, name, report,
                            should_stop, t0)
        return _full(req, base_dir, base_step, base_meta, tmp, info, name, n_epochs, report,
                     should_stop, t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _last_loss(out: Path) -> float | None:
    try:
        with open(out / "metrics.jsonl", "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 4096))
            last = fh.read().splitlines()[-1]
        return float(json.loads(last)["loss"])
    except (OSError, IndexError, KeyError, ValueError, TypeError):
        return None


@contextlib.contextmanager
def _step_reports(
    rid: int, out: Path, total: int, report: Report, should_stop: Callable[[], bool]
) -> Iterator[None]:
    """Report progress and check Cancel before every optimizer step of this thread."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    me = threading.get_ident()
    done = [0]
    clock = [0.0]

    def before_step(*_args: Any) -> None:
        if threading.get_ident() != me:
            return
        if should_stop():
            raise Cancelled
        if done[0] == 0:
            clock[0] = time.monotonic()
        else:
            eta = (time.monotonic() - clock[0]) / done[0] * (total - done[0])
            report(FinetuneProgress(rid, "train", done[0], total, _last_loss(out), eta))
        done[0] += 1

    report(FinetuneProgress(rid, "train", 0, total))
    handle = register_optimizer_step_pre_hook(before_step)
    try:
        yield
    finally:
        handle.remove()


def _full(
    req: FinetuneRequest, base_dir: Path, base_step: int, base_meta: dict[str, Any], shards: Path,
    info: dict[str, Any], name: str, n_epochs: int, report: Report,
    should_stop: Callable[[], bool], t0: float,
) -> FinetuneResponse:
    import dataclasses

    from sleeplm_core.train.checkpoint import load_model
    from sleeplm_core.train.loop import TrainRun, train

    out, rid, total = Path(req.out_dir), req.request_id, max(1, int(req.steps))
    extra = {"finetuned_from": info["base_checkpoint"], "finetune": info}
    try:
        with _step_reports(rid, out, total, report, should_stop):
            if base_meta.get("family") == "published":  # SleepLM-Base: its own objective
                from sleeplm_core.published.finetune import PublishedRun, finetune_published

                batch = max(2, min(req.batch_size or 8, n_epochs))
                metrics = finetune_published(PublishedRun(
                    init_from=base_dir, out_dir=out, steps=total, data=shards, batch_size=batch,
                    checkpoint_every=req.checkpoint_every or max(1, total // 5), log_every=1,
                    device=req.device, progress=False, extra_meta=extra,
                ))
            else:
                model, _ = load_model(base_dir, "cpu")  # checks the base; its config trains on
                cfg = model.cfg
                del model
                cfg = dataclasses.replace(
                    cfg, name=name, train=dataclasses.replace(cfg.train, num_workers=0)
                )
                batch = max(2, min(req.batch_size or cfg.train.batch_size, n_epochs))
                metrics = train(TrainRun(
                    cfg=cfg, out_dir=out, steps=total, data=shards, batch_size=batch,
                    lr=cfg.train.lr * 0.1,
                    checkpoint_every=req.checkpoint_every or max(1, total // 5),
                    log_every=1, init_from=base_dir / f"model_{base_step:06d}.safetensors",
                    resume=False, device=req.device, progress=False,
                    extra_meta={**extra, "init_meta": base_meta},
                ))
    except BaseException as exc:
        _keep_last(out, "cancelled" if isinstance(exc, Cancelled) else "failed", exc, total)
        raise
    loss = metrics.get("loss")
    report(FinetuneProgress(rid, "train", total, total, loss, 0.0))
    _prune(out)
    write_status(out, status="complete", step=total, steps=total)
    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    return FinetuneResponse(rid, str(out), total, clean, time.monotonic() - t0, "full")


def _keep_last(out: Path, status: str, exc: BaseException, total: int) -> None:
    """After a stopped run: keep the last complete checkpoint (and say so) or nothing."""
    for tmp in out.glob("*.tmp"):
        tmp.unlink(missing_ok=True)
    steps = checkpoint_steps(out)
    if not steps:
        shutil.rmtree(out, ignore_errors=True)
        return
    _prune(out)
    message = "" if isinstance(exc, Cancelled) else one_line(exc)
    write_status(out, status=status, step=steps[-1], steps=total, message=message)


def _prune(out: Path) -> None:
    """Keep the newest complete checkpoint's weights and meta only (no optimizer state)."""
    steps = checkpoint_steps(out)
    for step in steps[:-1]:
        for name in (f"model_{step:06d}.safetensors", f"meta_{step:06d}.json"):
            (out / name).unlink(missing_ok=True)
    for optim in out.glob("optim_*.safetensors"):
        optim.unlink(missing_ok=True)


def _fewshot(
    req: FinetuneRequest, base_dir: Path, base_step: int, base_meta: dict[str, Any], shards: Path,
    info: dict[str, Any], name: str, report: Report, should_stop: Callable[[], bool], t0: float,
) -> FinetuneResponse:
    from sleeplm_core.cli.fewshot import SCORED, embed_samples, split_support
    from sleeplm_core.data.dataset import ShardDataset
    from sleeplm_core.fewshot import HEAD_FILE, FewShotHead, fit_weights
    from sleeplm_core.train.checkpoint import load_model
    from sleeplm_core.train.loop import shard_paths

    rid, out = req.request_id, Path(req.out_dir)
    model, _ = load_model(base_dir, req.device or "cpu")
    samples = iter(ShardDataset(shard_paths(shards), channel_dropout=0.0, seed=1))
    support, held = split_support(samples, max(1, req.k), 200)
    if not support:
        raise SleepLMError(None, "no scored epochs (W, N1, N2, N3, REM) in these recordings")

    def before_chunk(i: int, n: int) -> None:
        if should_stop():
            raise Cancelled
        report(FinetuneProgress(rid, "fewshot", i, n))

    batch = 32
    n_chunks = (len(support) + len(held) + batch - 1) // batch
    emb, labels = embed_samples(model, support + held, batch=batch, before_chunk=before_chunk)
    n_sup = len(support)
    weight, bias = fit_weights(emb[:n_sup], labels[:n_sup], len(SCORED), "linear")
    fewshot = FewShotHead(weight, bias, SCORED, req.k, "logistic")
    accuracy = None
    if held:
        pred = fewshot.logits(emb[n_sup:]).argmax(1)
        accuracy = float((pred == labels[n_sup:]).mean())
    if should_stop():
        raise Cancelled
    per_stage = {s: int((labels[:n_sup] == c).sum()) for c, s in enumerate(SCORED)}
    head = {"stages": list(SCORED), "k": req.k, "method": "linear", "accuracy": accuracy,
            "n_eval": len(held), "support_per_stage": per_stage}
    part = out.with_name(out.name + ".part")  # renamed when complete: never half a model
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        shutil.copyfile(base_dir / f"model_{base_step:06d}.safetensors",
                        part / f"model_{base_step:06d}.safetensors")
        fewshot.save(part / HEAD_FILE)
        (part / "fewshot_head.json").write_text(json.dumps(head, indent=1), encoding="utf-8")
        meta = {**base_meta, "config": {**base_meta.get("config", {}), "name": name},
                "finetuned_from": info["base_checkpoint"], "finetune": info,
                "fewshot_head": head, "metrics": {"accuracy": accuracy}}
        (part / f"meta_{base_step:06d}.json").write_text(json.dumps(meta, indent=1),
                                                         encoding="utf-8")
        write_status(part, status="complete", step=base_step, steps=0)
        os.replace(part, out)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    metrics = {"accuracy": accuracy} if accuracy is not None else {}
    report(FinetuneProgress(rid, "fewshot", n_chunks, n_chunks))
    return FinetuneResponse(rid, str(out), base_step, metrics, time.monotonic() - t0, "fewshot")


# -- the host on the GUI thread -------------------------------------------------------------
