"""The annotation model: :class:`Annotation` (one event or stage) and :class:`Annotations`.

Kept apart from :mod:`sleeplm_core.io.annotations` (the readers and writers) so that the
format modules in :mod:`sleeplm_core.io.annotation_formats` import the model without
importing their own front door: imports go ``annotations -> annotation_formats ->
annotation_model``, never round in a circle.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sleeplm_core.io.labels import STAGE_LABEL, normalize_label

_STAGE_LABELS = frozenset(STAGE_LABEL.values())

__all__ = ["Annotation", "Annotations"]


@dataclass(frozen=True, slots=True)
class Annotation:
    """One scored event or stage.

    The label is normalized on construction (:func:`~sleeplm_core.io.labels.normalize_label`),
    an empty channel becomes ``None`` and extras are sorted by key, so that two annotations
    that mean the same compare equal.

    Parameters
    ----------
    onset_s : float
        Onset in seconds from the recording start.
    duration_s : float
        Duration in seconds, ``>= 0``.
    label : str
        The label; normalized to the AASM term.
    channel : str or None
        The channel the event was scored on, if any.
    extras : tuple of (str, str)
        Further fields, e.g. ``(("spo2_baseline", "95"), ("spo2_nadir", "88"))``.
    """

    onset_s: float
    duration_s: float
    label: str
    channel: str | None = None
    extras: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        onset = float(self.onset_s)
        duration = float(self.duration_s)
        if not math.isfinite(onset):
            raise ValueError(f"annotation onset must be finite, got {self.onset_s!r}")
        if not math.isfinite(duration) or duration < 0:
            raise ValueError(f"annotation duration must be finite and >= 0, got {duration!r}")
        object.__setattr__(self, "onset_s", onset)
        object.__setattr__(self, "duration_s", duration)
        object.__setattr__(self, "label", normalize_label(str(self.label)))
        channel = None if self.channel is None else str(self.channel).strip()
        object.__setattr__(self, "channel", channel or None)
        extras = tuple(sorted((str(k), str(v)) for k, v in self.extras))
        object.__setattr__(self, "extras", extras)

    @property
    def offset_s(self) -> float:
        """End of the annotation, in seconds from the recording start."""
        return self.onset_s + self.duration_s

    @property
    def is_stage(self) -> bool:
        """Whether this annotation is a sleep stage (or movement time / unscored)."""
        return self.label in _STAGE_LABELS

    def extra(self, key: str, default: str | None = None) -> str | None:
        """Return the first extra named ``key``, or ``default``."""
        for k, v in self.extras:
            if k == key:
                return v
        return default


def _sort_key(a: Annotation) -> tuple[float, str, float, str, tuple[tuple[str, str], ...]]:
    return (a.onset_s, a.label, a.duration_s, a.channel or "", a.extras)


class Annotations:
    """An ordered collection of :class:`Annotation` (by onset, then label).

    Parameters
    ----------
    items : iterable of Annotation
        The annotations, in any order.
    """

    def __init__(self, items: Iterable[Annotation] = ()) -> None:
        self._items: list[Annotation] = sorted(items, key=_sort_key)
        self._onsets: list[float] = [a.onset_s for a in self._items]
        # Kept up to date by add/remove: an edit in 100 000 events must not recount them.
        self._counts: Counter[str] = Counter(a.label for a in self._items)
        # Longest duration so far: bounds how far back ``between`` must look.
        self._max_duration = max((a.duration_s for a in self._items), default=0.0)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Annotation]:
        return iter(list(self._items))

    def __getitem__(self, index: int) -> Annotation:
        return self._items[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Annotations):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]  # mutable collection

    def __repr__(self) -> str:
        return f"<Annotations: {len(self)} items, {self.counts()}>"

    def add(self, a: Annotation) -> None:
        """Insert ``a`` at its place in the order."""
        i = bisect.bisect_right(self._items, _sort_key(a), key=_sort_key)
        self._items.insert(i, a)
        self._onsets.insert(i, a.onset_s)
        self._counts[a.label] += 1
        self._max_duration = max(self._max_duration, a.duration_s)

    def remove(self, a: Annotation) -> None:
        """Remove ``a``; raises ``ValueError`` when it is not in the collection."""
        i = bisect.bisect_left(self._items, _sort_key(a), key=_sort_key)  # not a list search
        while i < len(self._items) and self._items[i] != a and self._items[i].onset_s == a.onset_s:
            i += 1
        if i == len(self._items) or self._items[i] != a:
            raise ValueError(f"{a!r} is not in the collection")
        del self._items[i]
        del self._onsets[i]
        self._counts[a.label] -= 1
        if not self._counts[a.label]:
            del self._counts[a.label]

    def replace(self, old: Annotation, new: Annotation) -> None:
        """Replace ``old`` by ``new`` (keeping the order); ``ValueError`` if ``old`` is absent."""
        self.remove(old)
        self.add(new)

    def between(self, start_s: float, stop_s: float) -> list[Annotation]:
        """Return the annotations overlapping ``[start_s, stop_s)``.

        An annotation of zero duration overlaps when its onset lies in the interval.
        """
        first = bisect.bisect_left(self._onsets, start_s - self._max_duration)
        stop = bisect.bisect_left(self._onsets, stop_s)
        out = []
        for a in self._items[first:stop]:
            if a.offset_s > start_s or (a.duration_s == 0 and a.onset_s >= start_s):
                out.append(a)
        return out

    def counts(self) -> dict[str, int]:
        """Return the number of annotations per label."""
        return dict(self._counts)

    def onsets(self) -> list[float]:
        """Return the onsets in collection order (a new list)."""
        return list(self._onsets)

    def stages(self) -> list[Annotation]:
        """Return the stage annotations (including movement time and unscored)."""
        return [a for a in self._items if a.is_stage]

    def events(self) -> list[Annotation]:
        """Return all annotations that are not stages."""
        return [a for a in self._items if not a.is_stage]

    def with_label(self, *labels: str) -> list[Annotation]:
        """Return the annotations whose label is one of ``labels`` (normalized first)."""
        wanted = {normalize_label(lab) for lab in labels}
        return [a for a in self._items if a.label in wanted]
