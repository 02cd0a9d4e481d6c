"""The CUDA path: inference and training on the GPU agree with the CPU (skipped without one).

CI has no GPU; these run where one is lent (see the closing notes for the last run).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def _night(tmp_path: Path) -> tuple[Path, Path]:
    from sleeplm_core.synth import generate_night, write_night

    return write_night(generate_night(hours=0.5, seed=10_961, ahi=20.0), tmp_path / "n.edf")


def test_bundled_predictor_on_cuda_matches_the_cpu(tmp_path: Path) -> None:
    from sleeplm_core.inference import Predictor
    from sleeplm_core.io.recording import Recording

    edf, _ = _night(tmp_path)
    results = {}
    for device in ("cpu", "cuda"):
        pred = Predictor.load(device=device)
        with Recording.open(edf) as rec:
            emb = pred.embed_recording(rec, use_cache=False)
            staged = pred.stage(emb)
            found = pred.search(emb, "obstructive apnea", top=50)
        results[device] = (emb.embeddings, staged.stages(), found.segments)
    (e_cpu, s_cpu, f_cpu), (e_gpu, s_gpu, f_gpu) = results["cpu"], results["cuda"]
    cos = np.sum(e_cpu * e_gpu, axis=1)  # both L2-normalised
    assert cos.min() > 0.99
    assert np.mean([a == b for a, b in zip(s_cpu, s_gpu, strict=True)]) >= 0.95
    assert abs(len(f_cpu) - len(f_gpu)) <= max(1, len(f_cpu) // 10)


def test_training_steps_on_cuda_with_bf16(tmp_path: Path) -> None:
    from sleeplm_core.cli.main import main

    out = tmp_path / "run"
    code = main(["train", "--config", "sleeplm-tiny", "--synthetic", "1", "--epochs-per-night",
                 "16", "--steps", "4", "--batch-size", "8", "--log-every", "1", "--out", str(out),
                 "--device", "cuda", "--no-progress"])  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(np.isfinite(r["loss"]) for r in rows)
    meta = json.loads(next(out.glob("meta_*.json")).read_text())
    assert meta["device"].startswith("cuda") and meta["amp_bf16"] is True
