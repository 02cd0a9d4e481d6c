"""Open-vocabulary queries: route any wording to what the model was trained on, or say no.

The trained text projection only knows its captions' and phrase bank's wording. A query is
therefore read through the frozen MiniLM's own sentence space, against the anchors of
:mod:`sleeplm_core.model.phrases` (at least 30 training wordings per event type and stage,
clinical, lay and abbreviated, plus the canonical phrases and stage prompts):

- **embedding** (:meth:`QueryRouter.embed`): ``(1 - mix) * proj(query) + mix * sum_k
  softmax(cos_MiniLM(query, anchor_k) / tau) * target_k``. A canonical phrase's target is its
  own projection (so "obstructive apnea" stays what the model learnt); any other wording's
  target is its label's prototype, the mean projection of that label's canonical phrases
  (an event type's ``prompts.EVENT_TYPES`` phrases, a stage's prompts). ``mix`` and ``tau``
  come from the checkpoint's calibration (development wordings only).
- **routing** (:meth:`QueryRouter.label`, :meth:`nearest_event_type`, :meth:`kind`): the
  label of the nearest anchors decides the per-type dense settings and whether the dense
  (events) or the epoch-level (stages, long periods) search runs.
- **refusal** (:meth:`QueryRouter.refusal`): a negated event ("no apnea", "apnea-free") asks
  for an absence, which a search for matches cannot answer; a query whose best MiniLM
  similarity to every anchor is under the floor (:meth:`QueryRouter.floor`, chosen between
  :data:`~sleeplm_core.model.phrases.FAR_DEV` and :data:`~sleeplm_core.model.phrases.DEV`,
  never the evaluation wordings) is far from everything the model knows. Both return a
  sentence instead of confident matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sleeplm_core.model import phrases as P
from sleeplm_core.model.prompts import EVENT_TYPES, LONG_QUERIES

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Anchor:
    """A wording the router knows: its label (``event:apnea``, ``stage:N3``, ``long``)."""

    text: str
    label: str
    canonical: bool


def anchors(stage_prompts: dict[str, list[str]]) -> list[Anchor]:
    """Every anchor, canonical phrases first (a wording keeps its first label)."""
    out: list[Anchor] = []
    for t in EVENT_TYPES:
        out += [Anchor(p, f"event:{t.name}", True) for p in t.phrases]
    for stage, prompts in stage_prompts.items():
        out += [Anchor(p, f"stage:{stage}", True) for p in prompts]
    out += [Anchor(q, "long", True) for q in LONG_QUERIES]
    for t in EVENT_TYPES:
        out += [Anchor(p, f"event:{t.name}", False) for p in P.training_wordings(t.name)]
    for stage, words in P.stage_train().items():
        out += [Anchor(p, f"stage:{stage}", False) for p in words]
    seen: set[str] = set()
    unique = []
    for a in out:
        if a.text.lower() not in seen:
            seen.add(a.text.lower())
            unique.append(a)
    return unique


class QueryRouter:
    """Reads queries through MiniLM against the phrase bank (see the module docstring).

    Parameters
    ----------
    sentence_embed : callable
        MiniLM sentence embeddings, L2-normalised (n, 384).
    shared_embed : callable
        The model's text embeddings in the shared space, L2-normalised (n, E).
    stage_prompts : dict
        Stage -> its prompts (the canonical stage phrases).
    mix, tau : float
        The expansion's mix and softmax temperature.
    """

    def __init__(
        self,
        sentence_embed: Embed,
        shared_embed: Embed,
        stage_prompts: dict[str, list[str]],
        mix: float,
        tau: float,
    ) -> None:
        self.sentence_embed = sentence_embed
        self.shared_embed = shared_embed
        self.mix = mix
        self.tau = tau
        self.anchors = anchors(stage_prompts)
        self.raw = sentence_embed([a.text for a in self.anchors])
        canon = [a for a in self.anchors if a.canonical]
        proj = shared_embed([a.text for a in canon])
        own = {a.text: v for a, v in zip(canon, proj, strict=True)}
        protos: dict[str, np.ndarray] = {}
        for label in dict.fromkeys(a.label for a in canon):
            m = np.mean([own[a.text] for a in canon if a.label == label], axis=0)
            protos[label] = m / max(float(np.linalg.norm(m)), 1e-12)
        self.targets = np.stack(
            [own[a.text] if a.canonical else protos[a.label] for a in self.anchors]
        ).astype(np.float32)
        self.labels = np.array([a.label for a in self.anchors])
        self._floor: float | None = None
        self._sims: dict[str, np.ndarray] = {}

    def similarities(self, query: str) -> np.ndarray:
        """MiniLM cosine of the query to every anchor (cached per query)."""
        if query not in self._sims:
            self._sims[query] = self.raw @ self.sentence_embed([query])[0]
        return self._sims[query]

    def embed(self, query: str) -> np.ndarray:
        """The query in the shared space, routed through its nearest anchors."""
        sims = self.similarities(query)
        w = np.exp((sims - sims.max()) / self.tau)
        w /= w.sum()
        mixed = self.mix * (w @ self.targets)
        if self.mix < 1.0:
            mixed = mixed + (1.0 - self.mix) * self.shared_embed([query])[0]
        return np.asarray(mixed / max(float(np.linalg.norm(mixed)), 1e-12), dtype=np.float32)

    def label(self, query: str) -> tuple[str, float]:
        """The nearest anchor's label and its MiniLM similarity."""
        sims = self.similarities(query)
        k = int(np.argmax(sims))
        return str(self.labels[k]), float(sims[k])

    def nearest_event_type(self, query: str) -> str:
        """The event type whose anchors come closest to the query."""
        sims = self.similarities(query)
        best = {
            t.name: float(sims[self.labels == f"event:{t.name}"].max()) for t in EVENT_TYPES
        }
        return max(best, key=lambda k: best[k])

    def kind(self, query: str) -> str:
        """``"epoch"`` when the nearest anchor is a stage or a long period, else ``"dense"``."""
        return "dense" if self.label(query)[0].startswith("event:") else "epoch"

    def floor(self) -> float:
        """The similarity under which a query is "far from everything" (development sets).

        Midway between the highest off-topic development query and the lowest development
        wording when they separate; else the value that misclassifies fewest of them.
        """
        if self._floor is None:
            far = np.array([float(self.similarities(q).max()) for q in P.FAR_DEV])
            near = np.array(
                [float(self.similarities(q).max()) for qs in P.DEV.values() for q in qs]
            )
            if far.max() < near.min():
                self._floor = float((far.max() + near.min()) / 2)
            else:
                grid = np.sort(np.concatenate([far, near]))
                errors = [int((far >= g).sum() + (near < g).sum()) for g in grid]
                self._floor = float(grid[int(np.argmin(errors))])
        return self._floor

    def refusal(self, query: str) -> str:
        """Why a query gets no matches ("" when it should be searched)."""
        negated = P.negated_event(query)
        if negated is not None:
            return (f"“{query}” asks for the absence of {negated}: the search finds events, not "
                    f"their absence. Search “{negated}” to see where they are.")  # fmt: skip
        label, sim = self.label(query)
        if sim < self.floor():
            nearest = self.anchors[int(np.argmax(self.similarities(query)))].text
            return (f"“{query}” is far from anything this model knows (closest: “{nearest}”, "
                    f"similarity {sim:.2f} < {self.floor():.2f}); try the words a scorer "
                    "would use.")  # fmt: skip
        return ""
