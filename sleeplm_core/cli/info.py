"""``sleeplm info FILE [--json]``: what a recording holds.

Prints the channels (name, type, role, sf, unit, and the harmonisation rule that typed each),
the automatic montage (traces in display order, derivations with their two sources), the
duration and start time, the annotation counts by label, and, when the file or its sidecar has
them, the hypnogram summary and event indices.

Usage::

    python -m sleeplm_core.cli.main info night.edf
    sleeplm info night.edf --annotations night.xml --json
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from sleeplm_core.io.indices import event_indices
from sleeplm_core.io.position import describe_codes
from sleeplm_core.io.recording import Recording
from sleeplm_core.io.sidecar import find_sidecar


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``info`` subcommand."""
    p = subparsers.add_parser("info", help="describe a recording (channels, annotations, stats)")
    p.add_argument("file", help="EDF, EDF+ or BDF recording")
    p.add_argument(
        "--annotations",
        default=None,
        help="sidecar annotations (NSRR XML, Sleep-EDF hypnogram, CSV); "
        "by default FILE's .xml sibling is used when present",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def describe(rec: Recording) -> dict[str, Any]:
    """Summarize a recording in the shape of ``sleeplm info --json``.

    Parameters
    ----------
    rec : Recording
        An open recording.

    Returns
    -------
    dict
        Keys ``channels`` (each with ``rule``: the harmonisation-table row that typed it, and
        ``derived_from`` for a derivation), ``montage``, ``duration_s``, ``start``,
        ``annotations``, ``scoring``, ``hypnogram``, ``indices``, ``notes``.
    """
    hyp = rec.hypnogram
    hyp_summary: dict[str, Any] | None = None
    indices: dict[str, float | None] | None = None
    if hyp is not None:
        stats = hyp.sleep_statistics()
        hyp_summary = {"n_epochs": int(len(hyp)), "epoch_s": float(hyp.epoch_s), **_clean(stats)}
        indices = _clean(event_indices(rec.annotations, hyp))
    return {
        "channels": [_channel(rec, c) for c in rec.channels],
        "montage": [
            {"name": m.name, "type": m.type, "role": m.role,
             **({"sources": list(m.sources)} if m.sources else {})}
            for m in rec.montage
        ],
        "duration_s": float(rec.duration_s),
        "start": rec.start.isoformat(),
        "annotations": dict(sorted(rec.annotations.counts().items())),
        "hypnogram": hyp_summary,
        "indices": indices,
        "scoring": None if rec.scoring_source is None else str(rec.scoring_source),
        "notes": list(rec.notes),
    }


def _channel(rec: Recording, c: Any) -> dict[str, Any]:
    ct = rec.channel_type(c.name)
    out: dict[str, Any] = {"name": c.name, "type": c.type, "role": ct.role, "sf": float(c.sf),
                           "unit": c.unit}
    if ct.side:
        out["side"] = ct.side
    if ct.electrode:
        out["electrode"] = ct.electrode
        out["reference"] = ct.reference
    if c.type == "POSITION":
        codes = describe_codes(rec.window(0.0, float(rec.duration_s), [c.name]).data[0])
        if codes is not None:
            out["codes"] = {str(k): v for k, v in codes.items()}
    src = rec.derivation_sources(c.name)
    if src is not None:
        out["derived_from"] = list(src)
    out["rule"] = ct.rule
    return out


def _clean(d: dict[str, float]) -> dict[str, float | None]:
    """Round floats for display and turn NaN into None (valid JSON)."""
    out: dict[str, float | None] = {}
    for k, v in d.items():
        fv = float(v)
        out[k] = None if math.isnan(fv) else round(fv, 3)
    return out


def printable(text: str) -> str:
    r"""``text`` with control characters escaped (as ``\x1b``), safe to print on a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _print_text(info: dict[str, Any], path: str) -> None:
    print(f"{printable(path)}")
    print(f"  start     {info['start']}")
    for note in info["notes"]:
        print(f"  note      {printable(note)}")
    dur = info["duration_s"]
    print(f"  duration  {dur:.1f} s ({dur / 3600:.2f} h)")
    print(f"  channels  {len(info['channels'])}")
    width = max((len(c["name"]) for c in info["channels"]), default=4)
    for c in info["channels"]:
        role = f"{c['role']} {c.get('side', '')}".strip()
        why = f"= {' - '.join(c['derived_from'])}" if "derived_from" in c else c["rule"]
        name, unit = printable(c["name"]), printable(c["unit"])
        print(f"    {name:<{width}}  {c['type']:<8} {role:<14} {c['sf']:>7g} Hz  "
              f"{unit:<6} {why}")
    print("  montage   " + ", ".join(printable(m["name"]) for m in info["montage"]))
    ann = info["annotations"]
    print(f"  annotations  {sum(ann.values())}")
    for label, n in ann.items():
        print(f"    {printable(label):<28} {n}")
    if info["hypnogram"]:
        print("  hypnogram")
        for k, v in info["hypnogram"].items():
            print(f"    {k:<10} {v}")
    if info["indices"]:
        print("  event indices (per hour of sleep)")
        for k, v in info["indices"].items():
            print(f"    {k:<10} {v}")


def run(args: argparse.Namespace) -> int:
    """Run ``sleeplm info``; errors propagate as SleepLMError (exit 2 in main)."""
    sidecar = args.annotations or find_sidecar(args.file)
    with Recording.open(args.file, annotations=sidecar) as rec:
        info = describe(rec)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_text(info, args.file)
    return 0
