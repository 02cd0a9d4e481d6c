"""Atomic file writes: a temporary file beside the target, fsync, then ``os.replace``.

A reader never sees a half-written file, and a failed write leaves the old file intact.

Main functions
--------------
=====================  ===========================================
``atomic_write_bytes``  write ``bytes`` in one go
``atomic_open``         context manager yielding a text or binary file
=====================  ===========================================
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from io import BufferedWriter, TextIOWrapper
from os import PathLike
from pathlib import Path
from typing import Literal, overload

from sleeplm_core.errors import SleepLMError

__all__ = ["atomic_open", "atomic_write_bytes", "file_mode_for"]


@overload
def atomic_open(
    path: str | PathLike[str],
    mode: Literal["w"] = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    error: type[SleepLMError] = SleepLMError,
) -> AbstractContextManager[TextIOWrapper]: ...


@overload
def atomic_open(
    path: str | PathLike[str],
    mode: Literal["wb"],
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    error: type[SleepLMError] = SleepLMError,
) -> AbstractContextManager[BufferedWriter]: ...


def atomic_open(
    path: str | PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    error: type[SleepLMError] = SleepLMError,
) -> AbstractContextManager[TextIOWrapper | BufferedWriter]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    Parameters
    ----------
    path : str or PathLike
        The final file.
    mode : {"w", "wb"}
        Text or binary mode.
    encoding : str or None
        Text encoding (ignored in binary mode).
    newline : str or None
        Passed to :func:`open` in text mode (use ``""`` for the :mod:`csv` module).
    error : type of SleepLMError
        The error raised when the file cannot be created or replaced.

    Yields
    ------
    file object
        Write to it; it is flushed, fsynced and renamed when the block ends without an
        exception, and removed otherwise.

    Raises
    ------
    SleepLMError
        (of type ``error``) when the directory is missing or not writable.
    """
    # the overloads above give a text or binary file by mode; one generator serves both
    return _atomic_open(path, mode, encoding=encoding, newline=newline, error=error)


@contextlib.contextmanager
def _atomic_open(
    path: str | PathLike[str],
    mode: str,
    *,
    encoding: str | None,
    newline: str | None,
    error: type[SleepLMError],
) -> Iterator[TextIOWrapper | BufferedWriter]:
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    target = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or Path(".")
        )
    except OSError as exc:
        raise error(target, f"cannot write here: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    if mode == "wb":
        f: TextIOWrapper | BufferedWriter = os.fdopen(fd, "wb")
    else:
        f = os.fdopen(fd, "w", encoding=encoding, newline=newline)
    try:
        with f:
            # mkstemp makes the file private (0600); give it the mode a plain open() would.
            os.fchmod(f.fileno(), _existing_mode(target))
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise error(target, f"cannot write here: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def atomic_write_bytes(
    path: str | PathLike[str], data: bytes, *, error: type[SleepLMError] = SleepLMError
) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``).

    Raises
    ------
    SleepLMError
        (of type ``error``) when the file cannot be written.
    """
    with atomic_open(path, "wb", error=error) as f:
        f.write(data)


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def file_mode_for(target: str | PathLike[str]) -> int:
    """Permission bits for a file replacing ``target``: its own, else ``0666 & ~umask``.

    For writers that cannot use :func:`atomic_open` (HDF5 opens the file by name).
    """
    return _existing_mode(Path(target))


def _existing_mode(target: Path) -> int:
    """The permission bits to give the new file: the old file's, else 0666 less the umask."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable where the platform allows fsync on directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
