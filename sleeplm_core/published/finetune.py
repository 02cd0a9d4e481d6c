r"""Fine-tuning the published SleepLM-Base with our training machinery.

``sleeplm finetune --checkpoint DIR`` dispatches here when ``DIR`` holds a published-family
checkpoint (and so does the viewer's fine-tune dialog). The same data (our HDF5 shards or
synthetic epochs, :func:`sleeplm_core.train.loop.build_dataset`), the same per-rank batches,
learning-rate schedule, ``torchrun`` set-up and checkpoint writer as our own model; the
objective is the released one:

- **contrastive** (:class:`~sleeplm_core.losses.ContrastiveLoss`, features gathered across
  ranks) between the signal embedding and the embedding of the epoch's caption,
- **caption** cross-entropy of the decoder under teacher forcing (padding ignored), with the
  caption's modality as the decoder prefix,
- **reconstruction** only when ``recon_weight > 0``: the release has no reconstruction head,
  so a freshly initialised linear head predicts each z-scored 0.25-s patch from the signal
  tower's tokens. It is a training aid and is not saved (the checkpoint keeps exactly the
  released keys).

``freeze`` names towers to keep fixed (parameter groups): ``signal`` (``biosignals``),
``text`` (``text``), ``decoder`` (``text_decoder`` with the modality embeddings).

Usage::

    sleeplm finetune --checkpoint ~/.local/share/SleepLM/models/sleeplm-base \
        --data shards/ --out runs/base-ft --steps 500 --freeze text
    torchrun --standalone --nproc_per_node=8 -m sleeplm_core.cli.finetune \
        --checkpoint models/sleeplm-base --data shards/ --out runs/base-ft --steps 2000
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.errors import SleepLMError
from sleeplm_core.losses import ContrastiveLoss
from sleeplm_core.published.checkpoint import load_published, save_published
from sleeplm_core.published.model import MODALITY_INDEX, PublishedCoCa
from sleeplm_core.published.preprocess import to_model_input
from sleeplm_core.published.tokenizer import PAD, ClipTokenizer

TOWERS: dict[str, tuple[str, ...]] = {
    "signal": ("biosignals.",),
    "text": ("text.",),
    "decoder": ("text_decoder.", "channel_embeddings", "padding_embedding"),
}
"""Tower name -> parameter-name prefixes (for ``freeze``)."""
OUR_TO_RELEASED = {"brain": "brain", "heart": "heart", "respiratory": "respiratory",
                   "somatic": "position_muscle", "stage_event": "stage_event"}  # fmt: skip
CAPTION_TOKENS = 77
"""Caption length used in fine-tuning (our captions are short; the context allows 256)."""


@dataclass
class PublishedRun:
    """What to fine-tune, on what, for how long."""

    init_from: Path  # a published-family checkpoint folder
    out_dir: Path
    steps: int = 100
    data: Path | None = None  # directory (or file) of shards
    synthetic: int | None = None  # synthetic nights instead of shards
    batch_size: int = 16
    lr: float = 1e-5
    weight_decay: float = 0.1
    warmup_steps: int = 10
    checkpoint_every: int = 100
    log_every: int = 10
    freeze: tuple[str, ...] = ()
    contrastive_weight: float = 1.0
    caption_weight: float = 2.0  # CoCa's default balance
    recon_weight: float = 0.0
    device: str | None = None
    progress: bool = True
    seed: int = 0
    extra_meta: dict[str, Any] = field(default_factory=dict)


class PublishedCollator:
    """Samples (``signal`` (12, 1920) physical, ``mask``, ``captions``) -> a released batch."""

    def __init__(self, tokenizer: ClipTokenizer, seed: int) -> None:
        self.tokenizer = tokenizer
        self.rng = random.Random(seed)

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """``x`` (B, 10, 1920), ``ids`` (B, L), ``modality_ids`` (B, 2), ``texts``."""
        x = np.stack([np.asarray(s["signal"], np.float32) for s in samples])
        mask = np.stack([np.asarray(s["mask"], bool) for s in samples])
        texts, mods = [], []
        for s in samples:
            caps = {
                m: t for m, t in (s.get("captions") or {}).items() if m in OUR_TO_RELEASED and t
            }
            modality = self.rng.choice(sorted(caps)) if caps else "stage_event"
            texts.append(caps.get(modality, ""))
            mods.append([MODALITY_INDEX[OUR_TO_RELEASED[modality]], -1])
        return {
            "x": torch.from_numpy(to_model_input(x, mask)),
            "ids": torch.from_numpy(self.tokenizer.ids(texts, CAPTION_TOKENS)),
            "modality_ids": torch.tensor(mods, dtype=torch.long),
            "texts": texts,
        }


def freeze_towers(model: PublishedCoCa, towers: tuple[str, ...]) -> None:
    """Stop gradients of the named towers (see :data:`TOWERS`).

    Raises
    ------
    SleepLMError
        For an unknown tower name.
    """
    unknown = [t for t in towers if t not in TOWERS]
    if unknown:
        raise SleepLMError(None, f"cannot freeze {unknown[0]!r} (towers: {', '.join(TOWERS)})")
    prefixes = tuple(p for t in towers for p in TOWERS[t])
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(prefixes))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on matrices, none on biases, norms, embeddings' vectors, scale."""
    decay: list[nn.Parameter] = []
    rest: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 and "logit_scale" not in name else rest).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


class Objective(nn.Module):
    """The released objective as one module, so that DDP wraps a single forward.

    Parameters
    ----------
    model : PublishedCoCa
        The model being fine-tuned.
    recon : nn.Module or None
        A fresh reconstruction head (tokens (B, C, P, D) -> patches (B, C, P, 16)).
    """

    def __init__(self, model: PublishedCoCa, recon: nn.Module | None) -> None:
        super().__init__()
        self.model = model
        self.recon = recon
        self.contrastive = ContrastiveLoss(multi_positive=False)

    def forward(self, x: Tensor, ids: Tensor, modality_ids: Tensor) -> dict[str, Tensor]:
        """``contrastive_loss``, ``caption_loss`` (and ``recon_loss``) of one batch."""
        m = self.model
        tokens = m.biosignals.tokens(x)
        emb, memory = m.biosignals.pool(tokens)
        text_emb, text_tokens = m.text(ids)
        logits = m.text_decoder(memory, text_tokens[:, :-1], m.prefix(modality_ids))
        scale = m.logit_scale.clamp(max=float(np.log(100.0))).exp()
        out: dict[str, Tensor] = self.contrastive(
            F.normalize(emb, dim=-1), F.normalize(text_emb, dim=-1), scale
        )
        out["caption_loss"] = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), ignore_index=PAD
        )
        if self.recon is not None:
            b, c, t = x.shape
            patches = x.view(b, c, t // 16, 16)
            out["recon_loss"] = F.mse_loss(self.recon(tokens).float(), patches.float())
        return out


def finetune_published(run: PublishedRun) -> dict[str, float]:
    """Fine-tune a published-family checkpoint; return the last logged metrics."""
    from sleeplm_core.train.distributed import compute_cleanup, compute_init

    info = compute_init(run.device)
    try:
        return _finetune(run, info)
    finally:
        compute_cleanup()


def _finetune(run: PublishedRun, info: Any) -> dict[str, float]:  # noqa: C901 - the one loop
    from torch.nn.parallel import DistributedDataParallel

    from sleeplm_core.model.config import SleepLMConfig, load_config
    from sleeplm_core.train.device import amp_supported, autocast
    from sleeplm_core.train.distributed import mean_across_ranks, print0
    from sleeplm_core.train.loop import TrainRun, batches, build_dataset, lr_at

    model, base_meta = load_published(run.init_from, info.device)
    freeze_towers(model, run.freeze)
    ours: SleepLMConfig = load_config("sleeplm-tiny")  # data settings only (dropout, seed)
    dataset = build_dataset(
        TrainRun(cfg=ours, out_dir=run.out_dir, data=run.data, synthetic=run.synthetic),
        seed=run.seed,
    )
    torch.manual_seed(run.seed)
    recon = (
        nn.Linear(model.cfg.signal.transformer_width, 16).to(info.device)
        if run.recon_weight > 0
        else None
    )
    core = Objective(model, recon)
    objective: nn.Module = core
    if info.ddp:
        objective = DistributedDataParallel(
            core, device_ids=[info.device.index] if info.device.type == "cuda" else None
        )
    groups = param_groups(model, run.weight_decay)
    if recon is not None:
        groups.append({"params": list(recon.parameters()), "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=run.lr, betas=(0.9, 0.98), eps=1e-6)
    collate = PublishedCollator(ClipTokenizer(), run.seed + 7919 * info.rank)
    stream = batches(dataset, collate, info, batch_size=run.batch_size, seed=run.seed,  # type: ignore[arg-type]
                     start_step=0, num_workers=0)  # fmt: skip
    weights = {"contrastive_loss": run.contrastive_weight, "caption_loss": run.caption_weight,
               "recon_loss": run.recon_weight}  # fmt: skip
    use_amp = amp_supported(info.device)
    meta = {
        **run.extra_meta,
        "finetuned_from": str(run.init_from),
        "freeze": list(run.freeze),
        "base_weights_sha256": base_meta.get("weights_sha256"),
        "world_size": info.world_size,
    }
    out = Path(run.out_dir)
    if info.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print0(info, f"{model.cfg.name}: {n_train:,} trainable parameters on {info.device} "
                     f"x{info.world_size}, {run.steps} steps")  # fmt: skip
    bar = None
    if info.is_main_process and run.progress:
        from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

        bar = tqdm(total=run.steps, unit="step", file=sys.stderr, mininterval=1.0)
    metrics: dict[str, float] = {}
    window: dict[str, float] = {}
    window_n, t0 = 0, time.perf_counter()
    model.train()
    for step in range(1, run.steps + 1):
        raw = next(stream)
        batch = {k: v.to(info.device) if isinstance(v, Tensor) else v for k, v in raw.items()}
        lr = lr_at(step - 1, base=run.lr, warmup=run.warmup_steps, total=run.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(info.device, use_amp):
            parts = objective(batch["x"], batch["ids"], batch["modality_ids"])
            total = torch.stack([weights[k] * v for k, v in parts.items()]).sum()
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss is {float(total)} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[no-untyped-call, unused-ignore]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        for key, value in {**parts, "loss": total}.items():
            window[key] = window.get(key, 0.0) + float(value.detach())
        window_n += 1
        if bar is not None:
            bar.update(1)
        if step % run.log_every == 0 or step == run.steps:
            elapsed = time.perf_counter() - t0
            metrics = mean_across_ranks({k: v / window_n for k, v in window.items()}, info)
            metrics["contrastive_batch"] = core.contrastive.last_global_batch
            metrics.update(step=step, lr=lr, epochs_per_s=window_n * run.batch_size
                           * info.world_size / max(elapsed, 1e-9))  # fmt: skip
            if info.is_main_process:
                with open(out / "metrics.jsonl", "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(metrics) + "\n")
            window, window_n, t0 = {}, 0, time.perf_counter()
        if step % run.checkpoint_every == 0 or step == run.steps:
            if info.is_main_process:
                save_published(out, model, {**meta, "metrics": metrics}, step=step)
            if info.ddp:
                torch.distributed.barrier()
    if bar is not None:
        bar.close()
    return metrics
