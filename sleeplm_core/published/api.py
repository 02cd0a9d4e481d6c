"""A notebook API for the published SleepLM-Base.

>>> from sleeplm_core.published import PublishedSleepLM
>>> m = PublishedSleepLM.from_config("sleeplm-base-published")   # random weights  # doctest: +SKIP
>>> m = PublishedSleepLM.from_dir("~/.local/share/SleepLM/models/sleeplm-base")  # doctest: +SKIP
>>> e = m.encode_signals(x)            # x float (N, 10, 1920), their channel order -> (N, 512)
>>> t = m.encode_texts(["Sleep stage evaluation reveals Stable Light Sleep (N2) for this epoch."])
>>> m.caption(x[:2], "stage_event", method="beam")                  # doctest: +SKIP

``x`` is the released input: 30 s at 64 Hz, channels 0 ECG, 1 ABD, 2 THX, 3 airflow, 4 EOG
left, 5 EOG right, 6 C3-A2, 7 C4-A1, 8 chin EMG, 9 position (integer codes), each channel
except position z-scored (see :mod:`sleeplm_core.published.preprocess`, which makes it from a
:class:`~sleeplm_core.io.recording.Recording`). ``m.module`` is the torch module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sleeplm_core.published.config import PublishedConfig, load_config
from sleeplm_core.published.generation import greedy, group_beam_search
from sleeplm_core.published.model import MODALITY_INDEX, PublishedCoCa
from sleeplm_core.published.tokenizer import ClipTokenizer


class PublishedSleepLM:
    """The published model with its tokenizer, numpy in and out.

    Parameters
    ----------
    module : PublishedCoCa
        The torch module (kept in eval mode).
    device : str or torch.device
        Where it runs (``"cpu"``, ``"cuda"`` ...).
    """

    def __init__(self, module: PublishedCoCa, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.tokenizer = ClipTokenizer(module.cfg.text.context_length)

    @classmethod
    def from_config(cls, name_or_path: str | Path | PublishedConfig, device: str = "cpu",
                    seed: int = 0) -> PublishedSleepLM:  # fmt: skip
        """A model of a named configuration or config JSON, with random weights (``seed``)."""
        cfg = (
            name_or_path if isinstance(name_or_path, PublishedConfig) else load_config(name_or_path)
        )
        torch.manual_seed(seed)
        return cls(PublishedCoCa(cfg), device)

    @classmethod
    def from_dir(cls, path: str | Path, device: str | None = None) -> PublishedSleepLM:
        """An imported (safetensors) checkpoint folder; ``device`` defaults to CUDA/MPS/CPU."""
        from sleeplm_core.published.checkpoint import load_published
        from sleeplm_core.train.device import pick_device

        dev = pick_device(prefer=device)
        module, _ = load_published(Path(path).expanduser(), dev)
        return cls(module, dev)

    def _x(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x, np.float32) if not isinstance(x, torch.Tensor) else x)
        if t.ndim != 3 or t.shape[1] != self.module.cfg.signal.input_channels:
            raise ValueError(f"signals must be (N, {self.module.cfg.signal.input_channels}, T), "
                             f"got {tuple(t.shape)}")  # fmt: skip
        return t.float().to(self.device)

    @torch.inference_mode()
    def encode_signals(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """L2-normalised signal embeddings float32 (N, embed_dim)."""
        return self.module.encode_signal(self._x(x))[0].float().cpu().numpy()

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings float32 (N, embed_dim)."""
        ids = self.tokenizer(list(texts)).to(self.device)
        return self.module.encode_text(ids).float().cpu().numpy()

    @torch.inference_mode()
    def caption(
        self,
        x: np.ndarray | torch.Tensor,
        modality: str = "stage_event",
        method: str = "beam",
        max_len: int = 128,
        min_len: int = 16,
    ) -> list[str]:
        """One caption per window for ``modality``.

        ``modality`` is brain, heart, respiratory, position_muscle or stage_event; ``method``
        ``"beam"`` (3 beams in 3 groups, the authors' demo) or ``"greedy"``.
        """
        if modality not in MODALITY_INDEX:
            raise ValueError(f"modality must be one of {', '.join(MODALITY_INDEX)}")
        if method not in ("beam", "greedy"):
            raise ValueError("method must be 'beam' or 'greedy'")
        _, memory = self.module.encode_signal(self._x(x))
        prefix = [MODALITY_INDEX[modality]] + [-1] * (self.module.cfg.prefix_len - 1)
        mods = torch.tensor([prefix] * memory.shape[0], device=self.device)
        run = group_beam_search if method == "beam" else greedy
        ids = run(self.module, memory, mods, max_len=max_len, min_len=min_len)
        return [self.tokenizer.decode(row.tolist()) for row in ids.cpu()]
