"""Grounded-caption rows: per-modality checks on synthetic nights, absent mentions on real data.

``synthetic`` suite (held-out nights, seeds 10 000+), per modality, for the decoded captions
of the suite's caption epochs (greedy), **with** the grounding guards (what the viewer shows)
and **without** them (the decoder as it was: no repetition guard, no banned words, absent
modalities decoded):

- *factual accuracy*: of the sentences that state something checkable, the share that
  agrees with the epoch's measured features and annotated events
  (:func:`sleeplm_core.grounding.check_caption`);
- *hallucinated mentions per caption*: words about a channel the night lacks plus events
  stated in an epoch that has none of them (:func:`hallucinated_mentions`).

``grounding`` suite (real recordings, never trained or tuned on): the DREAMS excerpt 3 PSG
(``excerpt3.edf``, read like a user's file) and the eight single-channel DREAMS text
excerpts (one central EEG each). Captions of every modality (the default set plus the
modalities the file lacks, asked for explicitly) for :data:`REAL_EPOCHS` epochs spread over
each recording; the row is the number of words about absent channels per caption, guarded
and unguarded. Target: 0.

Usage::

    sleeplm eval --suite grounding [--data ../shared/data/real/dreams-spindles]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sleeplm_core import grounding as G
from sleeplm_core.errors import SleepLMError
from sleeplm_core.eval.base import Row, SuiteOptions, SuiteResult

REAL_EPOCHS = 12
"""Epochs captioned per real recording (evenly spread)."""
MODALITIES = ("stage_event", "brain", "heart", "respiratory", "somatic")


def unguarded(predictor: Any, windows: np.ndarray, mask: np.ndarray, modality: str) -> list[str]:
    """Greedy captions as the decoder gave them before grounding (for the "old" column)."""
    import torch

    from sleeplm_core.train.collate import zscore_windows

    x = torch.as_tensor(np.ascontiguousarray(windows), dtype=torch.float32)
    m = torch.as_tensor(np.broadcast_to(np.asarray(mask, bool), x.shape[:2]).copy())
    z = zscore_windows(x, m).to(predictor.device)
    out = predictor.model.generate(z, m.to(predictor.device), modality, None, 1, no_repeat_ngram=0)
    return list(out)


def hallucinated_mentions(text: str, facts: G.EpochFacts) -> int:
    """Words about absent channels plus events stated where the epoch has none of them."""
    n = len(G.absent_mentions(text, facts.mask))
    for sentence in G.split_sentences(text):
        if re.search(r"\b(?:no|neither|nor|without)\b", sentence, re.IGNORECASE):
            continue
        for kind, pattern in G.EVENT_WORDS.items():
            if re.search(pattern, sentence, re.IGNORECASE) and G._event_seen(kind, facts) is False:
                n += 1
    return n


def _factual(checks: Sequence[Any]) -> tuple[int, int]:
    ok = sum(c.status == "agrees" for c in checks)
    stated = sum(c.status in ("agrees", "disagrees", "absent") for c in checks)
    return ok, stated


def night_facts(nd: Any) -> list[G.EpochFacts]:
    """Measured features and annotated events of every epoch of a suite night."""
    from sleeplm_core.captions.features import night_features
    from sleeplm_core.stages import EPOCH_S

    data = nd.windows.transpose(1, 0, 2).reshape(nd.windows.shape[1], -1)
    feats = night_features(data, np.asarray(nd.mask, bool))
    out = []
    for e, f in enumerate(feats):
        a, b = e * EPOCH_S, (e + 1) * EPOCH_S
        events = [(lab, on - a, dur) for lab, on, dur in nd.annotations
                  if on < b and on + max(dur, 1e-9) > a]  # fmt: skip
        out.append(G.EpochFacts(f, np.asarray(nd.mask, bool), events))
    return out


def synthetic_rows(
    predictor: Any, nights: Sequence[Any], picks: Sequence[list[int]]
) -> tuple[list[tuple[str, float, int]], dict[str, Any]]:
    """Per-modality factual accuracy and hallucinated mentions, guarded and unguarded."""
    tallies: dict[tuple[str, str], list[int]] = {}
    examples: list[dict[str, str]] = []
    for nd, idx in zip(nights, picks, strict=True):
        if not idx:
            continue
        facts = night_facts(nd)
        present = ["stage_event", *G.present_modalities(np.asarray(nd.mask, bool))]
        for modality in present:
            guarded = predictor.generate(nd.windows[idx], nd.mask, modality, beam=1)
            old = unguarded(predictor, nd.windows[idx], nd.mask, modality)
            for way, texts in (("guarded", guarded), ("unguarded", old)):
                t = tallies.setdefault((modality, way), [0, 0, 0, 0])  # ok, stated, halluc, n
                for e, text in zip(idx, texts, strict=True):
                    ok, stated = _factual(G.check_caption(text, modality, facts[e]))
                    t[0] += ok
                    t[1] += stated
                    t[2] += hallucinated_mentions(text, facts[e])
                    t[3] += 1
            if len(examples) < 10:
                examples.append({"modality": modality, "guarded": guarded[0], "unguarded": old[0]})
    rows: list[tuple[str, float, int]] = []
    for (modality, way), (ok, stated, halluc, n) in sorted(tallies.items()):
        acc: float = ok / stated if stated else math.nan
        rows.append((f"caption {modality} factual accuracy vs measurements ({way})", acc,
                     int(stated)))  # fmt: skip
        rows.append((f"caption {modality} hallucinated mentions per caption ({way})",
                     halluc / n if n else math.nan, int(n)))  # fmt: skip
    return rows, {"examples": examples}


def real_recordings(root: Path) -> list[tuple[str, Any]]:
    """``(name, loader)`` for each real recording: the PSG EDF, then the text excerpts."""
    out: list[tuple[str, Any]] = []
    edf = root / "excerpt3.edf"
    if edf.is_file():
        out.append(("DREAMS excerpt3.edf (PSG)", edf))
    for txt in sorted(root.glob("excerpt[0-9].txt")):
        out.append((f"DREAMS {txt.name} (one EEG)", txt))
    return out


def _windows(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """``REAL_EPOCHS`` canonical windows spread over a recording, and its mask."""
    from sleeplm_core.eval.dreams import load_excerpt
    from sleeplm_core.inference import WINDOW_N, canonical_from_array
    from sleeplm_core.io.recording import Recording

    if source.suffix.lower() == ".edf":
        with Recording.open(source) as rec:
            win = rec.canonical(0.0, float(rec.duration_s))
            data, mask = np.asarray(win.data), np.asarray(win.mask, bool)
    else:
        k = int(re.findall(r"\d+", source.stem)[-1])
        ex = load_excerpt(source.parent, k)
        data, mask = canonical_from_array(ex.data, ex.sf, ex.ch_name)
    n = data.shape[1] // WINDOW_N
    take = np.unique(np.linspace(1, max(1, n - 2), REAL_EPOCHS).astype(int))
    return np.stack([data[:, k * WINDOW_N : (k + 1) * WINDOW_N] for k in take]), mask


def run_grounding(options: SuiteOptions) -> SuiteResult:
    """Absent-modality mentions per caption on the real recordings (see the module doc)."""
    from sleeplm_core.eval.base import load_model
    from sleeplm_core.eval.dreams import default_root

    root = Path(options.data_root) if options.data_root else default_root()
    recs = real_recordings(root)
    if not recs:
        raise SleepLMError(root, "no real recording here (excerpt3.edf or excerptN.txt)")
    model = load_model(options.checkpoint)
    predictor = model.stager
    if predictor is None or not hasattr(predictor, "generate"):
        raise SleepLMError(
            options.checkpoint, f"the grounding suite needs the model ({model.reason})"
        )
    rows: list[Row] = []
    details: dict[str, Any] = {}
    totals = {"guarded": [0, 0], "unguarded": [0, 0]}
    for name, source in recs:
        windows, mask = _windows(source)
        per = {"guarded": [0, 0], "unguarded": [0, 0]}
        words: dict[str, list[str]] = {"guarded": [], "unguarded": []}
        for modality in MODALITIES:
            for way in per:
                if way == "guarded":
                    texts = predictor.generate(windows, mask, modality, beam=1)
                else:
                    texts = unguarded(predictor, windows, mask, modality)
                for t in texts:
                    hits = G.absent_mentions(t, mask)
                    per[way][0] += len(hits)
                    per[way][1] += 1
                    words[way] += hits
        for way, (k, n) in per.items():
            totals[way][0] += k
            totals[way][1] += n
            rows.append(Row("grounding", f"absent-channel mentions per caption, {name} ({way})",
                            {"value": k / max(n, 1)}, n))  # fmt: skip
        details[name] = {"absent": [g.name for g in G.absent_groups(mask)],
                         "words": {w: sorted(set(v)) for w, v in words.items()}}  # fmt: skip
    for way, (k, n) in totals.items():
        rows.append(Row("grounding", f"absent-channel mentions per caption, all real ({way})",
                        {"value": k / max(n, 1)}, n))  # fmt: skip
    return SuiteResult("grounding", rows, details, columns=("value",))
