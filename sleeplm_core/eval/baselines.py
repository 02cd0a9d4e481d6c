"""YASA reference baselines: sleep staging and spindle detection on real EEG.

These are the figures SleepLM is compared against. YASA is run with its defaults
(``yasa.SleepStaging(raw, eeg_name).predict()`` and ``yasa.spindles_detect(data, sf)``);
the only change to the input is for recordings sampled below 100 Hz (DREAMS excerpt 3, 50 Hz):
YASA's staging asserts ``sf > 80`` and its spindle detector band-passes 1-30 Hz, above the
25-Hz Nyquist limit of a 50-Hz signal, so such signals are first upsampled to 100 Hz with
:func:`scipy.signal.resample_poly`. Upsampling adds no information above 25 Hz, so YASA's
beta-band features see an empty band there; that is a limit of the data, not of YASA.

Results are cached in ``<user cache>/sleeplm/yasa_baselines.json`` (``$XDG_CACHE_HOME`` is
honoured), keyed by a hash of the samples, the sampling rate and the YASA version, so a rerun
of ``sleeplm eval --suite dreams`` is instant.

Usage::

    from sleeplm_core.eval.dreams import load_dreams
    from sleeplm_core.eval.baselines import yasa_staging, yasa_spindles
    ex = load_dreams(excerpts=[1])[0]
    stages = yasa_staging(ex)            # one of W N1 N2 N3 REM per 30-s epoch
    spindles = yasa_spindles(ex)         # (onset_s, duration_s) in the first 1000 s
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import numpy as np

from sleeplm_core.errors import RecordingError, SleepLMError
from sleeplm_core.eval.dreams import DreamsExcerpt, Event, in_window
from sleeplm_core.eval.metrics import StagingScores, staging_scores
from sleeplm_core.io.atomic import atomic_write_bytes
from sleeplm_core.stages import EPOCH_S, normalize_stage

MIN_SF: Final[float] = 100.0
"""Signals below this rate are upsampled to it before YASA sees them."""

_CACHE_NAME: Final[str] = "yasa_baselines.json"
_CACHE_VERSION: Final[str] = "v1"  # bump when the way YASA is called changes
_EEG_HINTS: Final[tuple[str, ...]] = ("eeg", "c3", "c4", "cz", "fpz", "pz", "f3", "f4", "o1", "o2")

CacheArg = Path | bool
"""``True``: the default cache file; ``False``: no cache; a path: that JSON file."""


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def upsample_for_yasa(data: np.ndarray, sf: float) -> tuple[np.ndarray, float]:
    """Return ``(data, sf)`` unchanged when ``sf >= 100``, else upsampled to 100 Hz.

    Uses a polyphase FIR (:func:`scipy.signal.resample_poly`), which keeps the time axis:
    sample ``k`` of the output is at ``k / 100`` s.
    """
    if sf >= MIN_SF:
        return data, sf
    from scipy.signal import resample_poly

    ratio = Fraction(MIN_SF / sf).limit_denominator(1000)
    out = resample_poly(np.asarray(data, dtype=np.float64), ratio.numerator, ratio.denominator)
    return out, sf * ratio.numerator / ratio.denominator


@contextmanager
def _quiet_yasa() -> Iterator[None]:
    """Silence YASA/MNE logging and the third-party warnings they raise on good input."""
    loggers = [logging.getLogger(n) for n in ("yasa", "mne")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # sklearn/lightgbm: feature-name and version notices from YASA's pickled model
            warnings.filterwarnings("ignore", category=UserWarning, module=r"(sklearn|lightgbm)")
            warnings.filterwarnings("ignore", message=r".*feature names.*")
            warnings.filterwarnings("ignore", message=r".*Trying to unpickle estimator.*")
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(yasa|pandas)")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def _yasa_version() -> str:
    # from the package metadata: importing yasa (pandas, sklearn, lightgbm) takes seconds,
    # and a cached rerun should not pay for it
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("yasa")
    except PackageNotFoundError:
        return "absent"


def _cache_file(cache: CacheArg) -> Path | None:
    if cache is False:
        return None
    if cache is True:
        from sleeplm_core.resources import user_cache_dir

        return user_cache_dir(_CACHE_NAME)
    return Path(cache)


def _cached(cache: CacheArg, key: str, compute: Callable[[], Any]) -> Any:
    """Return ``compute()``, memoised under ``key`` in a small JSON file (best effort)."""
    path = _cache_file(cache)
    store: dict[str, Any] = {}
    if path is not None and path.is_file():
        try:
            store = json.loads(path.read_text())
        except (OSError, ValueError):
            store = {}
        if key in store:
            return store[key]
    value = compute()
    if path is not None:
        store[key] = value
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, json.dumps(store).encode("utf-8"))
        except (OSError, SleepLMError):
            pass  # a read-only home must not break an evaluation
    return value


def _key(kind: str, data: np.ndarray, sf: float, *extra: object) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(data, dtype=np.float32).tobytes()).hexdigest()
    return ":".join(
        [kind, _CACHE_VERSION, _yasa_version(), digest[:20], f"{sf:g}", *map(str, extra)]
    )


# ---------------------------------------------------------------------------------------------
# Staging
# ---------------------------------------------------------------------------------------------


def yasa_staging_array(
    data: np.ndarray,
    sf: float,
    ch_name: str,
    *,
    eog: np.ndarray | None = None,
    emg: np.ndarray | None = None,
) -> list[str]:
    """Stage a recording with ``yasa.SleepStaging`` (no cache).

    Parameters
    ----------
    data : np.ndarray
        Central EEG, shape (n_samples,), µV.
    sf : float
        Sampling rate in Hz (all channels). Below 100 Hz the signals are upsampled first.
    ch_name : str
        Name of the EEG channel (passed as ``eeg_name``).
    eog, emg : np.ndarray, optional
        EOG / chin EMG in µV, same length; YASA then uses its EEG+EOG(+EMG) classifier.

    Returns
    -------
    list of str
        One of ``W N1 N2 N3 REM`` per whole 30-s epoch from the first sample.
    """
    import mne
    import yasa

    signals = [("eeg", ch_name, data)]
    if eog is not None:
        signals.append(("eog", "EOG", eog))
    if emg is not None:
        signals.append(("emg", "EMG", emg))
    up = [upsample_for_yasa(x, sf) for _, _, x in signals]
    new_sf = up[0][1]
    n = min(x.size for x, _ in up)
    arr = np.vstack([x[:n] for x, _ in up]) * 1e-6  # MNE wants volts
    info = mne.create_info(
        [name for _, name, _ in signals], new_sf, [t for t, _, _ in signals], verbose=False
    )
    with _quiet_yasa():
        raw = mne.io.RawArray(arr, info, verbose=False)
        hyp = yasa.SleepStaging(
            raw,
            eeg_name=ch_name,
            eog_name="EOG" if eog is not None else None,
            emg_name="EMG" if emg is not None else None,
        ).predict()
    values = hyp.hypno.to_numpy() if hasattr(hyp, "hypno") else np.asarray(hyp)
    stages = [normalize_stage(str(v)) or "UNS" for v in values]
    n_epochs = int(n / new_sf // EPOCH_S)
    return stages[:n_epochs]


def yasa_staging(excerpt: DreamsExcerpt, *, cache: CacheArg = True) -> list[str]:
    """YASA staging of a DREAMS excerpt, aligned with ``excerpt.hypnogram`` (same length).

    Parameters
    ----------
    excerpt : DreamsExcerpt
        From :func:`sleeplm_core.eval.dreams.load_dreams`.
    cache : Path or bool
        See :data:`CacheArg`.

    Returns
    -------
    list of str
        ``W N1 N2 N3 REM`` per 30-s epoch.
    """
    key = _key("staging", excerpt.data, excerpt.sf, excerpt.ch_name)
    stages = _cached(
        cache, key, lambda: yasa_staging_array(excerpt.data, excerpt.sf, excerpt.ch_name)
    )
    out = list(stages)[: excerpt.n_epochs]
    if len(out) != excerpt.n_epochs:
        raise RuntimeError(f"YASA returned {len(out)} epochs for {excerpt.n_epochs} expected")
    return out


# ---------------------------------------------------------------------------------------------
# Spindles
# ---------------------------------------------------------------------------------------------


def yasa_spindles_array(data: np.ndarray, sf: float, ch_name: str) -> list[Event]:
    """Detect spindles with ``yasa.spindles_detect`` (default parameters, no hypnogram).

    Parameters
    ----------
    data : np.ndarray
        EEG, shape (n_samples,), µV.
    sf : float
        Sampling rate in Hz; below 100 Hz the signal is upsampled first.
    ch_name : str
        Channel name (informative only).

    Returns
    -------
    list of (onset_s, duration_s)
        Sorted by onset; empty when YASA finds none.
    """
    import yasa

    x, new_sf = upsample_for_yasa(np.asarray(data, dtype=np.float64), sf)
    with _quiet_yasa():
        res = yasa.spindles_detect(x, sf=new_sf, ch_names=[ch_name])
    if res is None:
        return []
    df = res.summary()
    return sorted((float(s), float(d)) for s, d in zip(df["Start"], df["Duration"], strict=True))


def yasa_spindles(
    excerpt: DreamsExcerpt, *, stop_s: float | None = None, cache: CacheArg = True
) -> list[Event]:
    """YASA spindles of a DREAMS excerpt whose onset is before ``stop_s``.

    YASA runs on the whole excerpt (its thresholds are relative to the whole signal), and the
    detections are then restricted to the scored part.

    Parameters
    ----------
    excerpt : DreamsExcerpt
        From :func:`sleeplm_core.eval.dreams.load_dreams`.
    stop_s : float, optional
        Keep onsets in ``[0, stop_s)``; default ``excerpt.expert1_scored_until_s`` (1000 s).
    cache : Path or bool
        See :data:`CacheArg`.
    """
    key = _key("spindles", excerpt.data, excerpt.sf, excerpt.ch_name)
    events = _cached(
        cache,
        key,
        lambda: [list(e) for e in yasa_spindles_array(excerpt.data, excerpt.sf, excerpt.ch_name)],
    )
    stop = excerpt.expert1_scored_until_s if stop_s is None else stop_s
    return in_window([(float(a), float(b)) for a, b in events], stop)


# ---------------------------------------------------------------------------------------------
# Staging of EDF files (e.g. for YASA-vs-SleepLM agreement)
# ---------------------------------------------------------------------------------------------


def yasa_staging_file(
    path: Path, eeg_name: str, *, eog_name: str | None = None, emg_name: str | None = None
) -> list[str]:
    """YASA staging of an EDF/BDF file; one of ``W N1 N2 N3 REM`` per 30-s epoch.

    The file is read through :class:`sleeplm_core.io.recording.Recording` (the project's one
    reader), which gives EEG, EOG and EMG in µV whatever the header's spelling of the unit
    (DREAMS' ``excerpt3.edf`` writes ``"UV"``, which MNE alone would leave unscaled, and its
    digital minimum makes pyedflib refuse the file). Channels of a lower rate than the fastest
    named one are held to that rate by the reader.

    Parameters
    ----------
    path : Path
        The recording.
    eeg_name : str
        A central EEG channel (e.g. ``"C3-A1"``).
    eog_name, emg_name : str, optional
        EOG and chin EMG channels; YASA then uses its EEG+EOG(+EMG) classifier.
    """
    from sleeplm_core.io.recording import Recording

    names = [n for n in (eeg_name, eog_name, emg_name) if n is not None]
    with Recording.open(path) as rec:
        missing = [n for n in names if n not in rec.ch_names]
        if missing:
            raise RecordingError(path, f"no channel {missing[0]!r}; channels are {rec.ch_names}")
        win = rec.window(0.0, rec.duration_s, names)
    rows = dict(zip(win.ch_names, win.data, strict=True))
    return yasa_staging_array(
        rows[eeg_name],
        win.sf,
        eeg_name,
        eog=rows[eog_name] if eog_name else None,
        emg=rows[emg_name] if emg_name else None,
    )


def bundled_eeg_files(min_duration_s: float = 300.0) -> list[tuple[Path, str]]:
    """EDF files shipped with pyedflib that hold a real EEG channel of at least 5 min.

    Looks in ``pyedflib/data`` and ``pyedflib/tests/data``. A channel counts as EEG when its
    label names an EEG lead (``EEG``, ``C3``, ``Cz``, ``Fpz`` ...). pyedflib 0.1.x ships only
    its *synthetic* ``test_generator.edf`` (square wave, ramp, sines, noise), so this returns
    an empty list there; it is kept so that a future bundled sample is picked up.

    Returns
    -------
    list of (path, channel name)
    """
    try:
        import pyedflib
    except ImportError:
        return []
    base = Path(pyedflib.__file__).parent
    found: list[tuple[Path, str]] = []
    for folder in (base / "data", base / "tests" / "data"):
        for path in sorted(folder.glob("*.edf")) if folder.is_dir() else []:
            try:
                with pyedflib.EdfReader(str(path)) as f:
                    if f.getFileDuration() < min_duration_s:
                        continue
                    for label in f.getSignalLabels():
                        low = label.strip().lower()
                        if any(
                            h in low.replace("-", " ").split() or low.startswith(h)
                            for h in _EEG_HINTS
                        ):
                            found.append((path, label.strip()))
                            break
            except OSError:
                continue
    return found


def yasa_agreement(
    predict_stages: Callable[[np.ndarray, float, str], Sequence[str]],
    data: np.ndarray,
    sf: float,
    ch_name: str,
    *,
    cache: CacheArg = True,
) -> StagingScores:
    """Agreement (kappa, accuracy, macro-F1) between YASA and another stager on one recording.

    For recordings without expert labels (e.g. :func:`bundled_eeg_files`), YASA is the
    reference: ``y_true`` is YASA's staging, ``y_pred`` the other stager's.

    Parameters
    ----------
    predict_stages : callable
        ``(data, sf, ch_name) -> stages per 30-s epoch``, e.g. ``Stager.predict_stages``.
    data : np.ndarray
        EEG, shape (n_samples,), µV.
    sf : float
        Sampling rate in Hz.
    ch_name : str
        Channel name.
    cache : Path or bool
        See :data:`CacheArg` (YASA's half only).
    """
    key = _key("staging", data, sf, ch_name)
    ref = list(_cached(cache, key, lambda: yasa_staging_array(data, sf, ch_name)))
    other = [str(s) for s in predict_stages(data, sf, ch_name)][: len(ref)]
    other += ["UNS"] * (len(ref) - len(other))  # missing epochs are not scored
    return staging_scores(ref, other)
