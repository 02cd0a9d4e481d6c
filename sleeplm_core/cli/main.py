"""Entry point of the ``sleeplm`` command.

Each subcommand lives in its own module under :mod:`sleeplm_core.cli` and exposes
``add_parser(subparsers)`` and ``run(args) -> int``. User errors
(:class:`~sleeplm_core.errors.SleepLMError`) print one line to stderr and exit with code 2.

Usage::

    python -m sleeplm_core.cli.main info FILE [--json]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sleeplm_core.errors import SleepLMError

# Modules below sleeplm_core.cli, one per subcommand, in the order `--help` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "info",
    "synth",
    "shards",
    "train",
    "finetune",
    "fewshot",
    "stage",
    "search",
    "caption",
    "embed",
    "eval",
    "batch",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(prog="sleeplm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        try:
            mod = importlib.import_module(f"sleeplm_core.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sleeplm_core.cli.{module}":
                continue
            raise
        mod.add_parser(sub)
    return parser


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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SleepLMError as exc:
        print(f"sleeplm: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sleeplm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
