"""Entry point of the ``sleeplm`` command.

Each subcommand lives in its own module under ``sleeplm_core.cli`` and exposes
``add_parser(subparsers)`` and ``run(args) -> int``; :data:`SUBCOMMANDS` registers it with a
one-line description. Only the module of the subcommand being run is imported, so
``sleeplm --help`` and ``sleeplm --version`` start without numpy, scipy or torch. User errors
(:class:`~sleeplm_core.errors.SleepLMError`) print one line to stderr and exit with code 2.

Global options: ``-v`` (log progress notes; ``-vv`` debug), ``-q`` (no progress bars),
``--version``. Progress bars are also off when stderr is not a terminal.

Usage::

    sleeplm stage night.edf --out night-stages.csv
    python -m sleeplm_core.cli.main info FILE [--json]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from collections.abc import Sequence

from sleeplm_core import __version__
from sleeplm_core.errors import SleepLMError

# Add a subcommand with one line: name -> (module below sleeplm_core.cli, one-line help).
# `--help` lists them in this order.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "describe a recording: channels, annotations, night statistics"),
    "synth": ("synth", "write a synthetic night (EDF + annotations) with known ground truth"),
    "shards": ("shards", "build HDF5 training shards with captions"),
    "train": ("train", "pretrain SleepLM"),
    "finetune": ("finetune", "continue training a checkpoint on new data"),
    "calibrate": ("calibrate", "calibrate a checkpoint's search thresholds on synthetic nights"),
    "fewshot": ("fewshot", "fit a few-shot stage head on frozen embeddings"),
    "stage": ("stage", "sleep stages per 30-s epoch (zero-shot or few-shot)"),
    "search": ("search", "find the segments matching a free-text description"),
    "caption": ("caption", "generated captions of an epoch, a span or the night"),
    "embed": ("embed", "compute and cache a night's embeddings"),
    "eval": ("eval", "run an evaluation suite (synthetic nights, real EEG, YASA reference)"),
    "models": ("models", "list, import or download models (the published SleepLM-Base)"),
    "batch": ("batch", "stage, embed or caption a cohort of recordings (resumable, torchrun)"),
}

_ROLE = re.compile(r":(?:mod|class|func|meth|attr|data|obj|exc|ref):`~?([^`]+)`")


def plain_text(text: str | None) -> str | None:
    """ReStructuredText docstring markup as plain text (``x`` -> x, :mod:`a.b` -> a.b)."""
    if text is None:
        return None
    text = _ROLE.sub(lambda m: m.group(1), text)
    text = text.replace("``", "").replace("::\n", ":\n")
    return re.sub(r"(?<![\w`])`([^`\n]+)`_?", r"\1", text)


def _verbosity_parent() -> argparse.ArgumentParser:
    """``-v`` / ``-q``, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                   help="log what happens (-vv: debug)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars")  # fmt: skip
    return p


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first known word), if any."""
    return next((a for a in argv if a in SUBCOMMANDS), None)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """Build the top-level parser; only the subcommand named in ``argv`` is imported.

    With no subcommand in ``argv`` every subcommand is listed (name and one-line help) from
    :data:`SUBCOMMANDS` alone, without importing its module.
    """
    parser = argparse.ArgumentParser(
        prog="sleeplm",
        description="SleepLM: sleep stages, event search and captions for PSG recordings.",
        parents=[_verbosity_parent()],
    )
    parser.add_argument("--version", action="version", version=f"sleeplm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv)
    names = SUBCOMMANDS if chosen is None else {chosen: SUBCOMMANDS[chosen]}
    for name, (module, help_line) in names.items():
        if chosen is None:
            sub.add_parser(name, help=help_line)
            continue
        mod = importlib.import_module(f"sleeplm_core.cli.{module}")
        mod.add_parser(sub)
        p = sub.choices[name]
        sub._choices_actions[-1].help = help_line  # one line in `sleeplm --help`
        p.description = plain_text(p.description or help_line)
        for action in p._actions:
            action.help = plain_text(action.help)
        if not any(a.dest == "verbose" for a in p._actions):
            for action in _verbosity_parent()._actions:
                p._add_action(action)
    return parser


def configure_logging(verbose: int) -> None:
    """``-v``: INFO notes of sleeplm_core on stderr; ``-vv``: DEBUG; default: warnings only."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("sleeplm: %(message)s"))
    log = logging.getLogger("sleeplm_core")
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sleeplm`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 on a user error.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    args.verbose = getattr(args, "verbose", 0)
    args.quiet = getattr(args, "quiet", False)
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except SleepLMError as exc:
        print(f"sleeplm: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sleeplm info --json FILE | head`: the reader left, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit flush does not fail again
        return 141  # 128 + SIGPIPE, as a shell tool killed by the pipe
    except OSError as exc:  # a file the command could not read or write
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"sleeplm: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sleeplm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
