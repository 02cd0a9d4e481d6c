"""``sleeplm calibrate``: choose a checkpoint's search thresholds on held-out synthetic nights.

The work is done by ``sleeplm_core.train.calibrate`` (its docstring lists what is chosen);
the calibration is written into the checkpoint's meta, and with ``--out`` the weights and the
calibrated meta are copied there (how ``make model`` bundles resources/models).

Usage::

    sleeplm calibrate --checkpoint runs/tiny-bundled --out resources/models
    python -m sleeplm_core.train.calibrate --checkpoint runs/tiny-bundled
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sleeplm calibrate``."""
    from sleeplm_core.train.calibrate import add_arguments

    p = subparsers.add_parser("calibrate", help="calibrate a checkpoint's search thresholds",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm calibrate``."""
    from sleeplm_core.train.calibrate import run as calibrate

    return calibrate(args)
