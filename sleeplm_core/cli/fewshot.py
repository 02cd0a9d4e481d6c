"""``sleeplm fewshot``: fit a sleep-stage head on K labelled epochs per stage.

The signal tower stays frozen. Epochs are embedded (L2-normalised signal features) and either

- ``--method prototype`` (default, as ``Predictor.fit_fewshot``): each stage's head row is
  the normalised mean of its support embeddings (cosine nearest-prototype, scaled by 10), or
- ``--method logistic`` (``linear`` is its older name): a logistic-regression probe is
  trained on the K x 5 support embeddings.

Both save the same tiny head, ``logits = emb @ weight.T + bias``, to
``OUT/fewshot_head.safetensors`` (``weight`` (S, E), ``bias`` (S,); see
:mod:`sleeplm_core.fewshot`) and ``OUT/fewshot_head.json`` (stages, k, method, checkpoint,
accuracy on held-out epochs). ``sleeplm stage FILE --head OUT`` then stages with it.

Usage::

    python -m sleeplm_core.cli.fewshot --checkpoint runs/tiny --k 5 --synthetic 4 --out runs/fs
    sleeplm fewshot --checkpoint runs/tiny --k 10 --data shards/ --out runs/fs --method logistic

This is a single-process command (no ``torchrun``): it embeds at most a few thousand epochs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sleeplm_core.errors import SleepLMError
from sleeplm_core.stages import SCORED_STAGES

SCORED = SCORED_STAGES


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm fewshot``."""
    p = subparsers.add_parser("fewshot", help="few-shot stage head on frozen embeddings",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--checkpoint", type=Path, required=True, help="run directory or checkpoint file"
    )
    p.add_argument("--k", type=int, required=True, help="labelled epochs per stage")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", type=Path, metavar="SHARDS", help="directory (or file) of shards")
    data.add_argument("--synthetic", type=int, metavar="N_NIGHTS", help="use N synthetic nights")
    p.add_argument("--out", type=Path, required=True, help="directory for the head")
    p.add_argument(
        "--method",
        choices=("prototype", "logistic", "linear"),
        default="prototype",
        help="prototype (cosine to class means; the default, as in Predictor.fit_fewshot) or "
        "logistic (a linear probe; 'linear' is its older name)",
    )
    p.add_argument("--eval-epochs", type=int, default=200, help="held-out epochs to score (200)")
    p.add_argument("--seed", type=int, default=1, help="which epochs form the support set")
    p.add_argument("--device", help="force a device (cpu, cuda:0, mps)")
    p.set_defaults(func=run)


def _samples(args: argparse.Namespace) -> Any:
    """An iterator of dataset samples in a seeded random order."""
    import numpy as np

    if args.synthetic is not None:
        from sleeplm_core.train.synthetic_data import SyntheticEpochs

        ds = SyntheticEpochs(args.synthetic, seed=args.seed + 10_000)
        order = np.random.default_rng(args.seed).permutation(len(ds))
        return (ds[int(i)] for i in order)
    from sleeplm_core.data.dataset import ShardDataset
    from sleeplm_core.train.loop import shard_paths

    return iter(ShardDataset(shard_paths(args.data), channel_dropout=0.0, seed=args.seed))


def split_support(
    samples: Any, k: int, n_eval: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Take K epochs per scored stage for support, then ``n_eval`` further ones for evaluation."""
    support: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    per_stage = dict.fromkeys(range(len(SCORED)), 0)
    for s in samples:
        stage = int(s["stage"])
        if stage not in per_stage:
            continue  # ART / UNS
        if per_stage[stage] < k:
            per_stage[stage] += 1
            support.append(s)
        elif len(held) < n_eval:
            held.append(s)
        if len(held) >= n_eval and all(v >= k for v in per_stage.values()):
            break
    return support, held


def embed_samples(
    model: Any,
    samples: list[dict[str, Any]],
    *,
    batch: int = 64,
    before_chunk: Any = None,
) -> tuple[Any, Any]:
    """Epoch embeddings float32 (n, E) and stage labels int64 (n,) of dataset samples.

    Parameters
    ----------
    model : SleepLM or PublishedCoCa
        In eval mode; its ``encode_signal`` runs on the model's device, without gradients
        (a published model gets its own input:
        :func:`sleeplm_core.published.preprocess.to_model_input`).
    samples : list of dict
        Dataset samples (``signal``, ``mask``, ``stage``).
    batch : int
        Samples per forward pass.
    before_chunk : callable, optional
        ``before_chunk(i, n_chunks)`` before each pass (progress; it may raise to stop).
    """
    import numpy as np
    import torch

    from sleeplm_core.model.signal_encoder import zscore_windows

    published = hasattr(model, "biosignals")  # PublishedCoCa
    device = model.logit_scale.device
    chunks = [samples[i : i + batch] for i in range(0, len(samples), batch)]
    out: list[Any] = []
    with torch.no_grad():
        for i, chunk in enumerate(chunks):
            if before_chunk is not None:
                before_chunk(i, len(chunks))
            sig = torch.stack([torch.as_tensor(s["signal"]) for s in chunk]).float()
            mask = torch.stack([torch.as_tensor(s["mask"], dtype=torch.bool) for s in chunk])
            if published:
                from sleeplm_core.published.preprocess import to_model_input

                x = torch.from_numpy(to_model_input(sig.numpy(), mask.numpy())).to(device)
                out.append(model.encode_signal(x)[0].float().cpu())
                continue
            x = zscore_windows(sig, mask).to(device)
            out.append(model.encode_signal(x, mask.to(device)).float().cpu())
    emb = torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
    return emb, np.array([int(s["stage"]) for s in samples], dtype=np.int64)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm fewshot``; return the exit status."""
    from sleeplm_core.fewshot import HEAD_FILE, FewShotHead, canonical_method, fit_weights
    from sleeplm_core.train.checkpoint import load_model
    from sleeplm_core.train.device import pick_device

    if args.k < 1:
        raise SleepLMError(None, "--k must be at least 1")
    device = pick_device(0, args.device)
    model, meta = load_model(args.checkpoint, device)
    support, held = split_support(_samples(args), args.k, args.eval_epochs)
    if not support:
        raise SleepLMError(args.data, "no scored epochs (W, N1, N2, N3, REM) in the data")

    emb, labels = embed_samples(model, support)
    weight, bias = fit_weights(emb, labels, len(SCORED), args.method)
    head = FewShotHead(weight, bias, SCORED, args.k, canonical_method(args.method))
    accuracy = None
    if held:
        h_emb, h_labels = embed_samples(model, held)
        accuracy = float((head.logits(h_emb).argmax(1) == h_labels).mean())
    args.out.mkdir(parents=True, exist_ok=True)
    head.save(args.out / HEAD_FILE)
    info = {
        "stages": list(SCORED),
        "k": args.k,
        "method": args.method,
        "support_per_stage": {SCORED[c]: int((labels == c).sum()) for c in range(len(SCORED))},
        "n_eval": len(held),
        "accuracy": accuracy,
        "checkpoint": str(args.checkpoint),
        "checkpoint_step": meta.get("step"),
    }
    (args.out / "fewshot_head.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    acc = "n/a" if accuracy is None else f"{accuracy:.3f}"
    print(f"fewshot {args.method} k={args.k}: accuracy {acc} on {len(held)} held-out epochs")
    return 0


if __name__ == "__main__":
    from sleeplm_core.cli.train import standalone

    sys.exit(standalone("fewshot", add_parser, sys.argv[1:]))
