"""Distil the bundled tower into one with fewer tokens (longer patches or merged ones), on the CPU.

An experiment for issue 16 (every channel with the dense track within 1.5x of YASA's time):
does a tower with fewer tokens keep the bundled model's quality? Two kinds of student:

- ``--patch-size 32``: patches of 32 samples (0.5 s) throughout; the patch embedding starts
  as the average of the teacher's over the patch's halves.
- ``--merge-size 2``: the teacher's own architecture with token merging
  (``signal.merge_size``): the blocks from ``signal.merge_from`` (1) on run on the means of
  2 adjacent patches and add their update back to both. Same parameters as the teacher, so
  the student starts as the teacher itself.

The student is the bundled model so changed; every part but the signal tower is copied and
frozen. The tower learns to give the teacher's pooled vector, caption memory and dense
features (averaged over the teacher's patches inside each of its own) on training nights'
windows (shards of seeds 0-19, which the bundled model trained on), under the channel sets the
product uses: as recorded, the staging montage, one central EEG, and random dropout. Then
``sleeplm calibrate`` and the eval suites judge it like any checkpoint.

Decision rule for ``--patch-size 32`` (last release), written before the first full run was
calibrated or evaluated (as for the CPU fine-tune of the release before): the distilled tower
replaces the bundled one only if, on the calibration nights (seeds 20000-20003, the
development set), staging accuracy >= 0.832, mean event F1 >= 0.867 and single-EEG mean F1
>= 0.717 (the bundled model's 0.844 / 0.886 / 0.737 less a small margin). It met the rule and
was not bundled: its spindle F1 fell on the held-out nights and on DREAMS (model card).

Decision rule for token merging (this release), written before any merged checkpoint was
calibrated or evaluated. Candidates, in order: (1) the bundled weights with
``signal.merge_size=2`` and no training (``runs/merge2``), (2) only if (1) fails, this script
with ``--merge-size 2`` for at most 30 min. A candidate is calibrated (``sleeplm calibrate``)
and replaces the bundled model only if, on the calibration nights (development set), against
the bundled model's figures from the same code (0.842 / 0.886 / 0.737, spindle 0.710):

- zero-shot staging accuracy >= 0.832, mean event F1 >= 0.866, single-EEG mean F1 >= 0.717;
- spindle F1 >= 0.690 (added after last release: spindle localization is what fewer tokens
  put at risk);
- and every channel with the dense track is faster (``SLEEPLM_BENCH_CHECKPOINT=...
  python -m benchmarks staging``, in the same sitting as the bundled model).

The held-out synthetic suite and DREAMS are reported for both, never used for the choice.

Usage::

    python scripts/distill_patches.py --data data/shards-train --out runs/p32-distil --minutes 30
    python scripts/distill_patches.py --data data/shards-train --out runs/merge2-distil \
        --patch-size 16 --merge-size 2 --minutes 30
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from sleeplm_core.inference import Predictor, bundled_checkpoint
from sleeplm_core.io.channels import CANONICAL_SLOTS
from sleeplm_core.model.signal_encoder import zscore_windows
from sleeplm_core.model.sleeplm import SleepLM
from sleeplm_core.train.checkpoint import save_checkpoint

STAGING = ("EOG_L", "C3_M2", "C4_M1", "EMG_CHIN")


def load_windows(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw float16 windows (n, 12, 1920) and slot masks (n, 12) of every shard in ``folder``."""
    sig, mask = [], []
    for path in sorted(folder.glob("*.h5")):
        with h5py.File(path, "r") as f:
            sig.append(f["signals"][()])
            mask.append(f["mask"][()])
    return np.concatenate(sig), np.concatenate(mask)


def channel_sets(mask: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Channel sets per window, as the product meets them.

    As recorded (40 %), staging montage (20 %), one central EEG (20 %), or each present
    channel dropped with probability 0.3 (20 %, at least one kept).
    """
    out = mask.clone()
    kind = torch.rand(len(mask), generator=gen)
    staging = torch.tensor([s in STAGING for s in CANONICAL_SLOTS])
    c3, c4 = CANONICAL_SLOTS.index("C3_M2"), CANONICAL_SLOTS.index("C4_M1")
    for i in range(len(mask)):
        if kind[i] < 0.4:
            continue
        if kind[i] < 0.6:
            out[i] &= staging
        elif kind[i] < 0.8:
            keep = torch.zeros(12, dtype=torch.bool)
            keep[c3 if torch.rand(1, generator=gen) < 0.5 else c4] = True
            out[i] &= keep
        else:
            out[i] &= torch.rand(12, generator=gen) > 0.3
        if not out[i].any():
            out[i] = mask[i]
    return out


def student_from(teacher: SleepLM, patch_size: int, merge_size: int = 1) -> SleepLM:
    """The teacher with ``patch_size``-sample patches and ``merge_size`` token merging.

    Its tower starts from the teacher's (with the teacher's patches, the teacher itself).
    """
    cfg = copy.deepcopy(teacher.cfg)
    cfg.signal = dataclasses.replace(cfg.signal, patch_size=patch_size, merge_size=merge_size)
    student = SleepLM(cfg, teacher.tokenizer)
    own = student.state_dict()
    for k, v in teacher.state_dict().items():
        if k in own and own[k].shape == v.shape:
            own[k] = v.clone()
    w = teacher.signal.patch_embed.weight  # (D, 1, p): each half of a longer patch
    ratio = patch_size // w.shape[-1]
    own["signal.patch_embed.weight"] = w.repeat(1, 1, ratio) / ratio
    student.load_state_dict(own)
    return student


def targets(
    teacher: SleepLM, x: torch.Tensor, m: torch.Tensor, ratio: int
) -> dict[str, torch.Tensor]:
    """The teacher's pooled vector, caption memory and dense features (patches averaged).

    ``ratio`` of the teacher's patches make one of the student's.
    """
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        enc = teacher.signal(x, m, decoder=True)
        dense = teacher.dense.raw(enc["tokens"], m).float()
    b, p, d = dense.shape
    return {
        "pooled": enc["pooled"].float(),
        "decoder_tokens": enc["decoder_tokens"].float(),
        "dense": dense.view(b, p // ratio, ratio, d).mean(2),
    }


def main() -> int:
    """Distil for ``--minutes``, then write the student as a checkpoint in ``--out``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--merge-size", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    pred = Predictor.load(device="cpu")
    teacher = pred.model.eval()
    student = student_from(teacher, args.patch_size, args.merge_size)
    ratio = args.patch_size // teacher.cfg.signal.patch_size
    for name, prm in student.named_parameters():
        prm.requires_grad_(name.startswith("signal."))
    student.train()
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    signals, masks = load_windows(args.data)
    print(f"{len(signals)} windows from {args.data}; {sum(p.numel() for p in params)} parameters")

    budget = 60.0 * args.minutes
    t0 = time.monotonic()
    step, log = 0, []
    while True:
        elapsed = time.monotonic() - t0
        if elapsed >= budget:
            break
        frac = elapsed / budget
        cosine = 0.1 + 0.45 * (1 + math.cos(math.pi * frac))
        lr = args.lr * min(1.0, (step + 1) / 50) * cosine
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(len(signals), (args.batch,), generator=gen).numpy()
        raw = torch.as_tensor(signals[idx].astype(np.float32))
        m = channel_sets(torch.as_tensor(masks[idx]), gen)
        x = zscore_windows(raw, m)
        want = targets(teacher, x, m, ratio)
        with torch.autocast("cpu", torch.bfloat16):
            enc = student.signal(x, m, decoder=True)
            dense = student.dense.raw(enc["tokens"], m)
        got = {"pooled": enc["pooled"], "decoder_tokens": enc["decoder_tokens"], "dense": dense}
        parts = {
            k: (got[k].float() - want[k]).pow(2).mean() / want[k].var().clamp_min(1e-6)
            for k in want
        }
        loss = parts["pooled"] + parts["decoder_tokens"] + parts["dense"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 100 == 0:
            row = {"step": step, "s": round(elapsed), "lr": lr}
            row.update({k: float(v) for k, v in parts.items()})
            log.append(row)
            print(json.dumps(row), flush=True)

    student.eval()
    meta = json.loads(sorted(bundled_checkpoint().glob("meta_*.json"))[-1].read_text())
    for key in ("format", "step", "code", "weights_sha256", "calibration"):
        meta.pop(key, None)
    meta["config"] = dataclasses.asdict(student.cfg)
    meta["distillation"] = {
        "teacher": pred.model_id,
        "data": str(args.data),
        "steps": step,
        "batch": args.batch,
        "minutes": args.minutes,
        "log": log[-5:],
    }
    save_checkpoint(args.out, step, student.checkpoint_state_dict(), None, meta)
    print(f"wrote {args.out} after {step} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
