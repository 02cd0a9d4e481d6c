"""Errors that reach the user as one line: the file, then the problem."""

from __future__ import annotations

from os import PathLike


class SleepLMError(Exception):
    """A problem with user input, reported as a single line without a traceback.

    Parameters
    ----------
    path : str or PathLike or None
        The file the problem is about, if any.
    problem : str
        What is wrong, in words a user understands.
    """

    def __init__(self, path: str | PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = " ".join(problem.split())
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return ``"<file>: <problem>"`` (or just the problem when no file is involved)."""
        return f"{self.path}: {self.problem}" if self.path else self.problem


class RecordingError(SleepLMError):
    """A recording (EDF/EDF+/BDF) cannot be read."""


class AnnotationError(SleepLMError):
    """An annotation file cannot be read, written, or does not fit its recording."""


class CheckpointError(SleepLMError):
    """A model checkpoint is missing, corrupt or of another version."""


class ShardError(SleepLMError):
    """A training shard is corrupt or was written by another version."""


class ConfigError(SleepLMError):
    """A model or training config has an unknown key or a wrong type."""
