"""tqdm progress bars for the long ``sleeplm`` commands, silent with ``-q`` or off a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def wants_bar(quiet: bool) -> bool:
    """Whether to draw a bar: not with ``-q``, and only when stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(
    desc: str, *, quiet: bool, unit: str = "window"
) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a tqdm bar on stderr while the block runs.

    Examples
    --------
    >>> with progress_bar("embedding", quiet=True) as progress:  # doctest: +SKIP
    ...     predictor.embed_recording(rec, progress=progress)
    """
    if not wants_bar(quiet):
        yield lambda done, total: None
        return
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()
