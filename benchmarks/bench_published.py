"""The published SleepLM-Base at full size (385 M parameters, random weights): per-epoch cost.

Speed does not depend on the weights, so a randomly initialised full-size model measures what
the real checkpoint costs. Rows: signal embedding per 30-s epoch (batch 4) and captions of a
fixed 16 tokens per epoch (greedy, and the authors' 3-beam / 3-group search); the full-night
figure is 960 epochs (8 h, windows 30 s apart) at the measured rate. The peer in the same run
is our bundled ``sleeplm-tiny`` embedding the same epochs (the ratio row). On CUDA the same rows
are measured on the GPU in bf16 (target: a full night < 60 s on one GPU).

Usage::

    python -m benchmarks published
"""

from __future__ import annotations

import time

import numpy as np

THREADS = 2
EPOCHS = 4
NIGHT_EPOCHS = 960
CAPTION_TOKENS = 16


def _time(fn, repeat: int = 2) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _rows_on(device: str) -> list[dict]:
    import torch

    from sleeplm_core.published.config import load_config
    from sleeplm_core.published.generation import greedy, group_beam_search
    from sleeplm_core.published.model import PublishedCoCa

    torch.manual_seed(0)
    model = PublishedCoCa(load_config("sleeplm-base-published")).eval().to(device)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(EPOCHS, 10, 1920)).astype("f4"))
    x = x.to(device)
    mods = torch.tensor([[4, -1]], device=device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else _null()

    def embed() -> None:
        with torch.inference_mode(), amp:
            model.encode_signal(x)
        if device == "cuda":
            torch.cuda.synchronize()

    def caption(run) -> float:  # type: ignore[no-untyped-def]
        with torch.inference_mode(), amp:
            memory = model.encode_signal(x[:1])[1]
            t0 = time.perf_counter()  # one run: a caption costs tens of seconds on the CPU
            run(model, memory, mods, max_len=CAPTION_TOKENS, min_len=CAPTION_TOKENS)
            return time.perf_counter() - t0

    per_epoch = _time(embed, repeat=1) / EPOCHS
    tag = "GPU bf16" if device == "cuda" else f"CPU, {THREADS} threads"
    return [
        {"benchmark": f"SleepLM-Base embedding per epoch ({tag})", "value": per_epoch * 1e3,
         "unit": "ms", "target": ""},
        {"benchmark": f"SleepLM-Base full 8-h night, 960 epochs ({tag})",
         "value": per_epoch * NIGHT_EPOCHS, "unit": "s",
         "target": "< 60 s on one GPU" if device == "cuda" else "stated"},
        {"benchmark": f"SleepLM-Base caption, {CAPTION_TOKENS} tokens, greedy ({tag})",
         "value": caption(greedy), "unit": "s", "target": ""},
        {"benchmark": f"SleepLM-Base caption, {CAPTION_TOKENS} tokens, 3 beams/3 groups ({tag})",
         "value": caption(group_beam_search), "unit": "s", "target": ""},
    ], per_epoch  # type: ignore[return-value]


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _tiny_per_epoch() -> float:
    from sleeplm_core.inference import Predictor

    pred = Predictor.load(device="cpu")
    x = np.random.default_rng(0).normal(size=(EPOCHS, 12, 1920)).astype("f4")
    mask = np.ones(12, bool)
    return _time(lambda: pred.embed_windows(x, mask)) / EPOCHS


def run() -> list[dict]:
    import torch

    torch.set_num_threads(THREADS)
    rows, cpu_epoch = _rows_on("cpu")
    tiny = _tiny_per_epoch()
    rows.append({"benchmark": "bundled sleeplm-tiny embedding per epoch (peer, same run)",
                 "value": tiny * 1e3, "unit": "ms", "target": ""})  # fmt: skip
    rows.append({"benchmark": "SleepLM-Base / sleeplm-tiny embedding time (CPU)",
                 "value": cpu_epoch / tiny, "unit": "x", "target": ""})  # fmt: skip
    if torch.cuda.is_available():
        gpu_rows, _ = _rows_on("cuda")
        rows.extend(gpu_rows)
    return rows
