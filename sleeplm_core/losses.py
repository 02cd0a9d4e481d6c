"""SleepLM objectives: contrastive, captioning, reconstruction, localization and stages.

Contrastive is CLIP's, captioning is next-token prediction, localization is the dense
per-patch phrase match, and the stage objective aligns epochs with the stage prompts.

Each loss module returns a dict with one ``*_loss`` key; :class:`SleepLMLoss` returns them all
(unweighted) and :meth:`SleepLMLoss.total` makes the weighted sum of the ``*_loss`` keys with the
config's λ weights.

Identical captions: multi-positive contrastive targets
------------------------------------------------------
Many epochs in a batch share a caption word for word (e.g. "stage N2, no events"). Plain
InfoNCE then treats the m - 1 other copies of a signal's own text as negatives: the loss can
never fall below log m and frequent captions weigh m times in every softmax. Note that merely
softening the target over the duplicate columns changes nothing (duplicates have identical
features, so value and gradient equal plain InfoNCE). With ``text_ids`` (equal id = identical
text) we therefore *merge* identical texts into one column (their mean feature):

- signal -> text: softmax over the U unique texts, one-hot on the signal's own text;
- text -> signal: one row per unique text, soft target uniform over the signals that carry it,
  ``p(i) = [id_i == u] / #{k: id_k == u}``.

With all ids distinct this is exactly CLIP's symmetric InfoNCE.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from sleeplm_core.model.config import LossConfig
from sleeplm_core.model.tokenizer import PAD_ID


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``scale`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def gather_with_local_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank (rank order); only the local shard keeps gradients.

    Every rank then computes the same global contrastive loss L but back-propagates only into
    its own shard, and DDP averages gradients over the W ranks. The local shard's gradient is
    therefore multiplied by W here, so that the average is exactly dL/dθ, the same weight the
    caption and reconstruction losses (local means, averaged by DDP) get. Parameters used
    after the gather (``logit_scale``) get the full dL/d(scale) on every rank and need no
    scaling. Without an initialised process group (or with one rank) ``x`` is returned
    unchanged. Every rank must pass the same shape.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    world = dist.get_world_size()
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.detach().contiguous())
    local = x
    if x.requires_grad:
        local = _ScaleGrad.apply(x, float(world))  # type: ignore[no-untyped-call, unused-ignore]
    parts[dist.get_rank()] = local
    return torch.cat(parts, dim=0)


def multi_positive_targets(ids: Tensor) -> tuple[Tensor, Tensor]:
    """Group identical texts.

    Returns
    -------
    (Tensor, Tensor)
        ``inverse`` int64 (N,): the unique-text column of each sample, and ``targets`` float
        (U, N): row u uniform over the samples whose text is unique text u.
    """
    _, inverse = torch.unique(ids, return_inverse=True)
    one_hot = F.one_hot(inverse).T.float()  # (U, N)
    return inverse, one_hot / one_hot.sum(dim=1, keepdim=True)


class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE between signal and text features, gathered across ranks.

    Parameters
    ----------
    multi_positive : bool
        Treat identical texts (equal ``text_ids``) as positives; see the module docstring.
    """

    def __init__(self, multi_positive: bool = True) -> None:
        super().__init__()
        self.multi_positive = multi_positive
        self.last_global_batch = 0  # rows after gathering, for logs and tests

    def forward(
        self,
        signal_features: Tensor,
        text_features: Tensor,
        logit_scale: Tensor,
        text_ids: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Loss of L2-normalised features (B, E); ``text_ids`` int64 (B,) optional."""
        s = gather_with_local_grad(signal_features)
        t = gather_with_local_grad(text_features)
        self.last_global_batch = s.shape[0]
        if self.multi_positive and text_ids is not None:
            inverse, target = multi_positive_targets(gather_with_local_grad(text_ids))
            t_unique = target @ t.float()  # mean feature of each unique text (U, E)
            logits = logit_scale * s.float() @ t_unique.T  # (N, U)
            loss_s = F.cross_entropy(logits, inverse)
            loss_t = -(target * F.log_softmax(logits.T, dim=1)).sum(1).mean()
        else:
            logits = logit_scale * s.float() @ t.float().T
            labels = torch.arange(s.shape[0], device=s.device)
            loss_s = F.cross_entropy(logits, labels)
            loss_t = F.cross_entropy(logits.T, labels)
        return {"contrastive_loss": (loss_s + loss_t) / 2}


def next_token_pairs(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """The one place where the caption shift happens.

    ``logits[:, i]`` (aligned with the decoder input) predicts the token at position i + 1, so
    predictions ``logits[:, :-1]`` are paired with ``targets[:, 1:]``.
    """
    return logits[:, :-1], targets[:, 1:]


class CaptionLoss(nn.Module):
    """Next-token cross-entropy; ``[PAD]`` targets (prompt, padding) are ignored."""

    def __init__(self, pad_id: int = PAD_ID) -> None:
        super().__init__()
        self.pad_id = pad_id

    def forward(self, caption_logits: Tensor, caption_targets: Tensor) -> dict[str, Tensor]:
        """``caption_logits`` (B, L, V) and ``caption_targets`` (B, L), aligned with the input."""
        pred, gold = next_token_pairs(caption_logits, caption_targets)
        if not bool((gold != self.pad_id).any()):
            return {"caption_loss": pred.sum() * 0.0}
        loss = F.cross_entropy(
            pred.reshape(-1, pred.shape[-1]).float(), gold.reshape(-1), ignore_index=self.pad_id
        )
        return {"caption_loss": loss}


class ReconstructionLoss(nn.Module):
    """Mean squared error on present channels only (missing channels are zeros, not targets).

    Parameters
    ----------
    patch_size : int
        Samples per patch, to expand a (B, C, P) patch mask to samples.
    masked_only : bool
        When a non-empty ``patch_mask`` is given, score only the hidden patches (MAE style).
    """

    def __init__(self, patch_size: int = 16, masked_only: bool = True) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.masked_only = masked_only

    def forward(
        self, recon: Tensor, target: Tensor, mask: Tensor, patch_mask: Tensor | None = None
    ) -> dict[str, Tensor]:
        """``recon``, ``target`` (B, C, T); ``mask`` bool (B, C); ``patch_mask`` bool (B, C, P)."""
        weight = mask.bool()[:, :, None].expand_as(target).float()
        if self.masked_only and patch_mask is not None and bool(patch_mask.any()):
            weight = patch_mask.repeat_interleave(self.patch_size, dim=-1).float() * weight
        err = (recon.float() - target.float()).pow(2) * weight
        return {"recon_loss": err.sum() / weight.sum().clamp_min(1.0)}


class LocalizationLoss(nn.Module):
    """Per-patch BCE between phrase-match logits and event masks (dense localization).

    ``loc_logits`` (B, K, P) are ``scale * cos(dense_t, phrase_k) + bias``; ``event_masks``
    (B, K, P) are 1 where an event of type k overlaps patch t; ``type_valid`` (B, K) is False
    where the sample lacks every channel on which type k shows (no target there). Every
    type is scored on every epoch: epochs without the event are its negatives.
    """

    def __init__(self, pos_weight: float = 4.0) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(
        self, loc_logits: Tensor, event_masks: Tensor, type_valid: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Mean BCE over valid (sample, type, patch) cells."""
        target = event_masks.float()
        pw = torch.tensor(self.pos_weight, device=loc_logits.device)
        bce = F.binary_cross_entropy_with_logits(
            loc_logits.float(), target, pos_weight=pw, reduction="none"
        )
        if type_valid is None:
            return {"localization_loss": bce.mean()}
        w = type_valid.float()[:, :, None].expand_as(bce)
        return {"localization_loss": (bce * w).sum() / w.sum().clamp_min(1.0)}


class StageLoss(nn.Module):
    """Cross-entropy of ``stage_logits`` (B, 5) against scored stages (codes 0..4; others skip)."""

    def forward(self, stage_logits: Tensor, stage: Tensor) -> dict[str, Tensor]:
        """``stage`` int64 (B,), YASA codes (W 0 … REM 4; ART -1, UNS -2 are ignored)."""
        target = torch.where((stage >= 0) & (stage <= 4), stage, -100)
        if not bool((target >= 0).any()):
            return {"stage_loss": stage_logits.sum() * 0.0}
        return {"stage_loss": F.cross_entropy(stage_logits.float(), target, ignore_index=-100)}


class SleepLMLoss(nn.Module):
    """All three objectives on a model output dict and a collated batch.

    ``forward`` returns the unweighted ``{"contrastive_loss", "caption_loss", "recon_loss"}``
    (a key is absent when its head did not run); :meth:`total` is the λ-weighted sum.
    """

    def __init__(self, cfg: LossConfig, *, patch_size: int = 16, masked_only: bool = True) -> None:
        super().__init__()
        self.weights = {
            "contrastive_loss": cfg.contrastive_weight,
            "caption_loss": cfg.caption_weight,
            "recon_loss": cfg.recon_weight,
            "localization_loss": cfg.localization_weight,
            "stage_loss": cfg.stage_weight,
        }
        self.contrastive = ContrastiveLoss(cfg.multi_positive)
        self.caption = CaptionLoss()
        self.recon = ReconstructionLoss(patch_size, masked_only)
        self.localization = LocalizationLoss(cfg.loc_pos_weight)
        self.stage = StageLoss()

    def forward(self, out: dict[str, Tensor | None], batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Compute the losses whose inputs are present."""
        losses: dict[str, Tensor] = {}
        signal_f, text_f = out.get("signal_features"), out.get("text_features")
        scale = out.get("logit_scale")
        if signal_f is not None and text_f is not None and scale is not None:
            losses.update(self.contrastive(signal_f, text_f, scale, batch.get("text_ids")))
        logits = out.get("caption_logits")
        if logits is not None:
            losses.update(self.caption(logits, batch["caption_targets"]))
        recon = out.get("recon")
        if recon is not None:
            losses.update(self.recon(recon, batch["signal"], batch["mask"], out.get("patch_mask")))
        loc = out.get("loc_logits")
        if loc is not None and "event_masks" in batch:
            losses.update(self.localization(loc, batch["event_masks"], batch.get("type_valid")))
        stage_logits = out.get("stage_logits")
        if stage_logits is not None:
            losses.update(self.stage(stage_logits, batch["stage"]))
        return losses

    def total(self, losses: dict[str, Tensor]) -> Tensor:
        """λ-weighted sum of the ``*_loss`` keys."""
        terms = [self.weights.get(k, 1.0) * v for k, v in losses.items() if k.endswith("_loss")]
        return torch.stack(terms).sum()
