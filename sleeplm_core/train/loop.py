"""The training loop: one process or many (``torchrun``), synthetic data or shards.

:func:`train` is what ``sleeplm train`` and ``sleeplm finetune`` call. In order, it

1. sets up the process (:func:`~sleeplm_core.train.distributed.compute_init`),
2. builds the data (synthetic epochs or ``ShardDataset``) and the caption vocabulary,
3. builds the model, optionally loads weights (finetune) or the latest checkpoint in ``out_dir``
   (resume: model, optimizer, step; the data order continues where it stopped),
4. loops: batch -> forward -> :class:`~sleeplm_core.losses.SleepLMLoss` -> backward -> step,
   with a warmup + cosine learning rate, gradient clipping, bf16 autocast on CUDA,
5. every ``checkpoint_every`` steps (and at the end) saves a checkpoint on rank 0, and every
   ``log_every`` steps appends a line to ``out_dir/metrics.jsonl``.

The frozen text backbone never runs inside the DDP forward: caption embeddings come from its
in-memory cache (:meth:`TextEncoder.encode_texts`) and enter as ``text_emb``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset

from sleeplm_core.errors import ShardError, SleepLMError
from sleeplm_core.losses import SleepLMLoss
from sleeplm_core.model.config import SleepLMConfig
from sleeplm_core.model.prompts import stage_prompts
from sleeplm_core.model.sleeplm import SleepLM
from sleeplm_core.model.tokenizer import CaptionTokenizer
from sleeplm_core.train import checkpoint as ckpt
from sleeplm_core.train.collate import SleepLMCollator
from sleeplm_core.train.device import amp_supported, autocast
from sleeplm_core.train.distributed import (
    DistInfo,
    broadcast_object,
    compute_cleanup,
    compute_init,
    mean_across_ranks,
    print0,
)
from sleeplm_core.train.synthetic_data import SyntheticEpochs

BATCH_KEYS_TO_DEVICE = ("signal", "mask", "text_ids", "modality_ids", "caption_tokens",
                        "caption_targets", "stage", "event_masks", "type_valid")  # fmt: skip


@dataclass
class TrainRun:
    """What to train, on what, for how long. ``None`` fields fall back to ``cfg.train``."""

    cfg: SleepLMConfig
    out_dir: Path
    steps: int | None = None
    data: Path | None = None  # directory (or file) of shards
    synthetic: int | None = None  # number of synthetic nights instead of shards
    epochs_per_night: int = 60  # synthetic only
    synth_shards: int | None = None  # generate_night() nights -> shards in out_dir/shards
    synth_hours: float = 1.0  # length of each of those nights
    batch_size: int | None = None
    num_workers: int | None = None  # DataLoader worker processes
    lr: float | None = None
    checkpoint_every: int | None = None
    log_every: int | None = None
    init_from: Path | None = None  # finetune: start from these weights (and their vocabulary)
    resume: bool = True  # continue from the latest checkpoint in out_dir, if any
    device: str | None = None
    progress: bool = True
    extra_meta: dict[str, Any] = field(default_factory=dict)


def shard_paths(data: Path) -> list[Path]:
    """The shard files of a directory (or the file itself)."""
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise ShardError(data, "no such shard file or directory")
    paths = sorted(p for p in data.iterdir() if p.suffix in (".h5", ".hdf5") and p.is_file())
    if not paths:
        raise ShardError(data, "no shards (*.h5) in this directory")
    return paths


def build_dataset(run: TrainRun, *, seed: int) -> Dataset[dict[str, Any]]:
    """Synthetic epochs or the shards of ``run.data``."""
    tc = run.cfg.train
    if run.synthetic is not None:
        return SyntheticEpochs(
            run.synthetic,
            epochs_per_night=run.epochs_per_night,
            seed=tc.seed,
            channel_dropout=tc.channel_dropout,
        )
    if run.data is None:
        raise SleepLMError(None, "give --data SHARDS_DIR or --synthetic N_NIGHTS")
    from sleeplm_core.data.dataset import ShardDataset

    return ShardDataset(
        shard_paths(run.data),
        channel_dropout=tc.channel_dropout,
        seed=seed,
        central_only_prob=tc.central_only_prob,
        staging_montage_prob=tc.staging_montage_prob,
        augment_prob=tc.augment_prob,
    )


def prepare_synth_shards(shard_dir: Path, n_nights: int, hours: float, info: DistInfo) -> Path:
    """Build shards of ``n_nights`` realistic synthetic nights (``sleeplm_core.synth``) once.

    Rank 0 builds (complete shards from an earlier run are kept); the other ranks wait.
    """
    if info.is_main_process:
        from sleeplm_core.data.shards import build_shards
        from sleeplm_core.data.sources import synth_sources

        build_shards(synth_sources(f"synth:{n_nights}:{hours}"), shard_dir, progress=False)
    if info.ddp:
        dist.barrier()
    return shard_dir


def describe_data(run: TrainRun, dataset: Dataset[dict[str, Any]]) -> dict[str, Any]:
    """Data provenance for the checkpoint metadata."""
    if isinstance(dataset, SyntheticEpochs):
        return dataset.describe()
    assert run.data is not None
    return {"kind": "shards", "paths": [str(p) for p in shard_paths(run.data)]}


def caption_corpus(dataset: Dataset[dict[str, Any]], limit: int) -> list[str]:
    """Captions to build the vocabulary from: all (synthetic) or the first ``limit`` samples.

    The answers for absent modalities ("no heart channels in this recording") are always in.
    """
    from sleeplm_core.grounding import EPOCH_MODALITIES, absent_text

    absent = [absent_text(m) for m in EPOCH_MODALITIES]
    if isinstance(dataset, SyntheticEpochs):
        return [*dataset.caption_corpus(), *absent]
    texts: list[str] = list(absent)
    samples: Iterable[dict[str, Any]] = dataset  # type: ignore[assignment]
    for i, sample in enumerate(samples):
        texts.extend(str(c) for c in (sample.get("captions") or {}).values())
        if i + 1 >= limit:
            break
    return texts


def batches(
    dataset: Dataset[dict[str, Any]],
    collate: SleepLMCollator,
    info: DistInfo,
    *,
    batch_size: int,
    seed: int,
    start_step: int,
    num_workers: int,
) -> Iterator[dict[str, Any]]:
    """Endless per-rank batches, continuing after a resume at ``start_step``.

    - Map-style data (synthetic): a :class:`DistributedSampler`, reshuffled each pass; a resume
      continues exactly where the interrupted run was.
    - Rank-aware iterable data (``ShardDataset``, recognised by its ``set_epoch``): the dataset
      splits epochs across ranks and DataLoader workers itself (equal counts per rank). Pass p
      of a run resumed at step s uses shuffle ``s + p``: a fresh order rather than re-reading
      the interrupted pass up to its position.
    - Other iterables: rank r takes every world_size-th sample.
    """
    if isinstance(dataset, IterableDataset):
        set_epoch = getattr(dataset, "set_epoch", None)
        if set_epoch is not None:
            pass_index = start_step
            while True:
                set_epoch(pass_index)
                n = 0
                loader = DataLoader(
                    dataset,
                    batch_size=batch_size,
                    collate_fn=collate,
                    num_workers=num_workers,
                    drop_last=True,
                )
                for batch in loader:
                    n += 1
                    yield batch
                if n == 0:
                    raise ShardError(
                        None, f"fewer epochs per rank than the batch size {batch_size}"
                    )
                pass_index += 1
        local: list[dict[str, Any]] = []
        while True:
            seen = 0
            for i, sample in enumerate(dataset):
                seen += 1
                if i % info.world_size != info.rank:
                    continue
                local.append(sample)
                if len(local) == batch_size:
                    yield collate(local)
                    local = []
            if seen == 0:
                raise ShardError(None, "the data holds no epochs")
    sampler: DistributedSampler[int] = DistributedSampler(
        dataset,
        num_replicas=info.world_size,
        rank=info.rank,
        shuffle=True,
        seed=seed,
        drop_last=True,
    )
    per_pass = len(sampler) // batch_size
    if per_pass == 0:
        raise SleepLMError(None, f"{len(sampler)} epochs per rank < batch size {batch_size}")
    pass_index, skip = divmod(start_step, per_pass)
    while True:
        sampler.set_epoch(pass_index)
        idx = list(sampler)
        groups = [idx[i : i + batch_size] for i in range(0, per_pass * batch_size, batch_size)]
        loader = DataLoader(
            dataset, batch_sampler=groups[skip:], collate_fn=collate, num_workers=num_workers
        )
        yield from loader
        pass_index, skip = pass_index + 1, 0


def lr_at(step: int, *, base: float, warmup: int, total: int) -> float:
    """Linear warmup to ``base``, then cosine decay to 10 % of it at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def make_optimizer(model: SleepLM, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms, embeddings' 1-d params and the temperature."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and "logit_scale" not in name else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out = dict(batch)
    for key in BATCH_KEYS_TO_DEVICE:
        if key in batch:
            out[key] = batch[key].to(device, non_blocking=True)
    return out


def _build_tokenizer(
    run: TrainRun,
    dataset: Dataset[dict[str, Any]],
    info: DistInfo,
    resume_meta: dict[str, Any] | None,
) -> CaptionTokenizer:
    for meta in (resume_meta, run.extra_meta.get("init_meta")):
        if meta is not None:
            return CaptionTokenizer(meta.get("vocab"))
    if not run.cfg.decoder.restrict_vocab:
        return CaptionTokenizer(None)
    tokens = None
    if info.is_main_process:
        tokens = CaptionTokenizer.from_corpus(
            caption_corpus(dataset, run.cfg.train.vocab_scan_samples)
        ).tokens
    return CaptionTokenizer(broadcast_object(tokens, info))


def train(run: TrainRun) -> dict[str, float]:
    """Train (or finetune, or resume) and return the last logged metrics."""
    info = compute_init(run.device)
    try:
        return _train(run, info)
    finally:
        compute_cleanup()


def _train(run: TrainRun, info: DistInfo) -> dict[str, float]:  # noqa: C901 - the one loop
    cfg, tc = run.cfg, run.cfg.train
    steps = run.steps if run.steps is not None else tc.steps
    batch_size = run.batch_size or tc.batch_size
    base_lr = run.lr if run.lr is not None else tc.lr
    every_ckpt = run.checkpoint_every or tc.checkpoint_every
    every_log = run.log_every or tc.log_every
    out_dir = Path(run.out_dir)

    resume_step = ckpt.latest_step(out_dir) if run.resume else None
    resume_meta = ckpt.load_meta(out_dir) if resume_step is not None else None
    start_step = resume_step or 0
    if run.synth_shards is not None:
        run.data = prepare_synth_shards(out_dir / "shards", run.synth_shards, run.synth_hours, info)
    dataset = build_dataset(run, seed=tc.seed)

    torch.manual_seed(tc.seed)  # identical initial weights on every rank
    tokenizer = _build_tokenizer(run, dataset, info, resume_meta)
    model = SleepLM(cfg, tokenizer)
    if run.init_from is not None and resume_meta is None:
        state, _ = ckpt.load_checkpoint(run.init_from)
        missing = model.load_checkpoint_state_dict(state)
        if missing:
            raise SleepLMError(run.init_from, f"{len(missing)} weights missing, e.g. {missing[0]}")
    model.to(info.device)
    optimizer = make_optimizer(model, base_lr, tc.weight_decay)
    if resume_meta is not None:
        state, _ = ckpt.load_checkpoint(out_dir)
        model.load_checkpoint_state_dict(state)
        ckpt.load_optimizer(out_dir, optimizer)
        print0(info, f"resuming from {out_dir} at step {start_step}")
    torch.manual_seed(tc.seed + 1000 * info.rank + start_step)  # per-rank masking noise

    if model.text.frozen and isinstance(dataset, SyntheticEpochs):
        model.text.precompute(dataset.caption_corpus())
    prompts = stage_prompts()
    stage_emb = torch.stack([model.text.encode_texts(prompts[s]) for s in prompts])
    ddp: torch.nn.Module = model
    if info.ddp:
        ddp = DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None
        )
    loss_fn = SleepLMLoss(
        cfg.loss, patch_size=cfg.signal.patch_size, masked_only=cfg.recon.masked_only
    )
    collate = SleepLMCollator(
        tokenizer,
        tc.modalities,
        max_len=cfg.decoder.max_len,
        seed=tc.seed + 7919 * info.rank + start_step,
        prompt_prob=tc.prompt_prob,
        absent_prob=tc.absent_caption_prob,
        patch_size=cfg.signal.patch_size,
    )
    stream = batches(
        dataset,
        collate,
        info,
        batch_size=batch_size,
        seed=tc.seed,
        start_step=start_step,
        num_workers=tc.num_workers if run.num_workers is None else run.num_workers,
    )
    use_amp = tc.amp and amp_supported(info.device)
    meta_base = {
        "config": cfg.to_dict(),
        "vocab": tokenizer.tokens if cfg.decoder.restrict_vocab else None,
        "data": describe_data(run, dataset),
        "world_size": info.world_size,
        "global_batch_size": batch_size * info.world_size,
        "device": str(info.device),
        "amp_bf16": use_amp,
        **{k: v for k, v in run.extra_meta.items() if k != "init_meta"},
    }
    if info.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        counts = model.param_counts()
        print0(
            info,
            f"{cfg.name}: {counts['total']:,} parameters ({counts['trainable']:,} trainable) "
            f"on {info.device} x{info.world_size}, steps {start_step}->{steps}",
        )

    bar = None
    if info.is_main_process and run.progress:
        from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

        bar = tqdm(total=steps, initial=start_step, unit="step", file=sys.stderr, mininterval=1.0)
    metrics: dict[str, float] = {}
    window: dict[str, float] = {}
    window_n, window_t0 = 0, time.perf_counter()
    step = start_step
    model.train()
    while step < steps:
        batch = _to_device(next(stream), info.device)
        lr = lr_at(step, base=base_lr, warmup=tc.warmup_steps, total=steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        text_kwargs: dict[str, Any] = (
            {"text_emb": model.text.encode_texts(batch["texts"])}
            if model.text.frozen
            else {"texts": batch["texts"]}
        )
        if cfg.loss.localization_weight > 0 and "loc_phrases" in batch:
            text_kwargs["loc_text_emb"] = model.text.encode_texts(batch["loc_phrases"])
        if cfg.loss.stage_weight > 0:
            text_kwargs["stage_text_emb"] = stage_emb
        with autocast(info.device, use_amp):
            out = ddp(
                batch["signal"],
                batch["mask"],
                caption_tokens=batch["caption_tokens"],
                modality_ids=batch["modality_ids"],
                **text_kwargs,
            )
            losses = loss_fn(out, batch)
            total = loss_fn.total(losses)
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss is {total.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[no-untyped-call, unused-ignore]
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        step += 1

        for key, value in {**losses, "loss": total}.items():
            window[key] = window.get(key, 0.0) + float(value.detach())
        window_n += 1
        if bar is not None:
            bar.update(1)
        if step % every_log == 0 or step == steps:
            elapsed = time.perf_counter() - window_t0
            metrics = mean_across_ranks({k: v / window_n for k, v in window.items()}, info)
            metrics.update(
                step=step,
                lr=lr,
                logit_scale=float(model.logit_scale.detach().exp()),
                epochs_per_s=window_n * batch_size * info.world_size / max(elapsed, 1e-9),
                contrastive_batch=loss_fn.contrastive.last_global_batch,
            )
            if info.is_main_process:
                with open(out_dir / "metrics.jsonl", "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(metrics) + "\n")
                if bar is not None:
                    bar.set_postfix(
                        loss=f"{metrics['loss']:.3f}", ep_s=f"{metrics['epochs_per_s']:.1f}"
                    )
            window, window_n, window_t0 = {}, 0, time.perf_counter()
        if step % every_ckpt == 0 or step == steps:
            if info.is_main_process:
                ckpt.save_checkpoint(
                    out_dir,
                    step,
                    model.checkpoint_state_dict(),
                    optimizer,
                    {**meta_base, "metrics": metrics},
                )
            if info.ddp:
                dist.barrier()
    if bar is not None:
        bar.close()
    print(
        f"rank {info.rank}/{info.world_size}: finished at step {step}, "
        f"contrastive batch {loss_fn.contrastive.last_global_batch}",
        flush=True,
    )
    return metrics
