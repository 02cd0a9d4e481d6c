"""Where shard recordings come from: a ``SRC`` argument turned into a list of :class:`Source`.

==========================  ====================================================================
``SRC``                     recordings
==========================  ====================================================================
``night.edf``               one EDF/BDF with its sidecar (``.xml``, ``-nsrr.xml``, ``.csv``,
                            Sleep-EDF ``*-Hypnogram.edf``; see :func:`~sleeplm_core.io.sidecar.
                            find_sidecar`)
``folder/``                 every EDF/BDF below it (hypnogram EDFs excluded), each with its
                            sidecar; an NSRR cohort (``polysomnography/edfs/`` +
                            ``polysomnography/annotations-events-nsrr/``) is the same thing
``synth:N[:hours]``         N synthetic nights (seeds 0..N-1, 8 h unless given), made on the fly
``sleep-edf:SUBJECTS``      Sleep-EDF (age study, first night) fetched by MNE, e.g.
                            ``sleep-edf:0-4`` or ``sleep-edf:0,3``; needs the internet
==========================  ====================================================================
"""

from __future__ import annotations

import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sleeplm_core.errors import ShardError
from sleeplm_core.io.recording import Recording
from sleeplm_core.io.sidecar import find_sidecar

RECORDING_SUFFIXES: tuple[str, ...] = (".edf", ".bdf", ".rec")
SLEEP_EDF_HOST = ("physionet.org", 443)
NETWORK_TIMEOUT_S = 3.0
DEFAULT_SYNTH_HOURS = 8.0


@dataclass(frozen=True, slots=True)
class Source:
    """One recording to turn into a shard.

    Parameters
    ----------
    record_id : str
        Unique name; the shard is ``<record_id>.h5``.
    edf : Path or None
        The recording file (``None`` for a synthetic night).
    annotations : Path or None
        Its sidecar annotation file, if any.
    synth_seed : int or None
        Seed of a synthetic night made on the fly.
    synth_hours : float
        Length of that synthetic night.
    """

    record_id: str
    edf: Path | None = None
    annotations: Path | None = None
    synth_seed: int | None = None
    synth_hours: float = DEFAULT_SYNTH_HOURS

    @property
    def description(self) -> str:
        """The source file (or synthetic settings) as stored in the shard's attributes."""
        if self.edf is not None:
            return str(self.edf)
        return f"synth:seed={self.synth_seed}:hours={self.synth_hours:g}"

    @contextmanager
    def open(self) -> Iterator[Recording]:
        """Open the recording (a synthetic night is written to a temporary EDF+ first).

        Yields
        ------
        Recording
            Closed again when the block ends.
        """
        if self.edf is not None:
            rec = Recording.open(self.edf, annotations=self.annotations)
            try:
                yield rec
            finally:
                rec.close()
            return
        from sleeplm_core.synth.night import generate_night, write_night

        night = generate_night(hours=self.synth_hours, seed=int(self.synth_seed or 0))
        with tempfile.TemporaryDirectory(prefix="sleeplm-synth-") as tmp:
            edf, _xml = write_night(night, Path(tmp) / f"{self.record_id}.edf")
            # the EDF+ carries the annotations already; the XML beside it would double them
            rec = Recording.open(edf)
            try:
                yield rec
            finally:
                rec.close()


def _int_list(text: str, what: str) -> list[int]:
    """Parse ``"0-3,7"`` into ``[0, 1, 2, 3, 7]``."""
    out: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ShardError(None, f"{what}: cannot read {text!r}; write e.g. 0-4 or 0,3,7")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        out.extend(range(lo, hi + 1))
    return out


def synth_sources(spec: str) -> list[Source]:
    """Sources for ``synth:N[:hours]``."""
    m = re.fullmatch(r"synth:(\d+)(?::(\d+(?:\.\d+)?))?", spec)
    if not m or int(m.group(1)) < 1:
        raise ShardError(None, f"{spec}: write synth:N or synth:N:HOURS, e.g. synth:4:0.5")
    hours = float(m.group(2)) if m.group(2) else DEFAULT_SYNTH_HOURS
    return [
        Source(f"synth-{i:05d}", synth_seed=i, synth_hours=hours) for i in range(int(m.group(1)))
    ]


def sleep_edf_sources(spec: str, *, timeout_s: float = NETWORK_TIMEOUT_S) -> list[Source]:
    """Fetch Sleep-EDF subjects with MNE and return them as sources.

    Raises
    ------
    ShardError
        At once (after ``timeout_s``) when the download server cannot be reached.
    """
    subjects = _int_list(spec.split(":", 1)[1], "sleep-edf")
    try:
        socket.create_connection(SLEEP_EDF_HOST, timeout=timeout_s).close()
    except OSError as exc:
        raise ShardError(
            None,
            f"{spec}: cannot reach {SLEEP_EDF_HOST[0]} to download Sleep-EDF ({exc}); "
            "download it elsewhere and pass its folder instead",
        ) from None
    from mne.datasets.sleep_physionet import age

    try:
        pairs = age.fetch_data(subjects=subjects, recording=[1], on_missing="warn")
    except Exception as exc:  # noqa: BLE001  (any download failure is one line for the user)
        raise ShardError(None, f"{spec}: Sleep-EDF download failed: {exc}") from None
    return [Source(Path(psg).stem.removesuffix("-PSG"), Path(psg), Path(hyp)) for psg, hyp in pairs]


def file_sources(root: Path) -> list[Source]:
    """Sources for an EDF file or every recording below a folder (NSRR cohorts included)."""
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(
            p
            for p in root.rglob("*")
            if p.suffix.lower() in RECORDING_SUFFIXES
            and p.is_file()
            and not p.stem.endswith("Hypnogram")
            and "annotations-events" not in p.parts[-2]
        )
        if not files:
            raise ShardError(root, "no EDF/BDF recordings found in this folder")
    else:
        raise ShardError(root, "no such file or folder")
    ids: dict[str, Path] = {}
    out: list[Source] = []
    for f in files:
        rid = f.stem.removesuffix("-PSG")
        if rid in ids:  # same name in two sub-folders: qualify with the folder
            rid = "__".join(f.relative_to(root).with_suffix("").parts)
        ids[rid] = f
        out.append(Source(rid, f, find_sidecar(f)))
    return out


def resolve_sources(spec: str) -> list[Source]:
    """Turn a ``SRC`` argument into sources (see the module table).

    Parameters
    ----------
    spec : str
        ``synth:N[:hours]``, ``sleep-edf:SUBJECTS``, an EDF file or a folder.

    Returns
    -------
    list of Source
        Ordered by record id.

    Raises
    ------
    ShardError
        For an unreadable spec, a missing path, or an unreachable Sleep-EDF server.
    """
    if spec.startswith("synth:"):
        sources = synth_sources(spec)
    elif spec.startswith("sleep-edf:"):
        sources = sleep_edf_sources(spec)
    else:
        sources = file_sources(Path(spec))
    return sorted(sources, key=lambda s: s.record_id)
