"""The open-vocabulary phrase bank: many wordings per event type and per stage, in three sets.

Each event type of :data:`sleeplm_core.model.prompts.EVENT_TYPES` and each scored stage has

- **training wordings** (:data:`TRAIN`, at least 30 each: clinical terms, lay words,
  abbreviations). Training draws one of them per type for every step
  (:class:`sleeplm_core.train.collate.Collator`), and at inference they are the anchors a
  query is routed by (:mod:`sleeplm_core.vocabulary`);
- **development wordings** (:data:`DEV`): the only wordings any choice may look at (the
  routing temperature, the "far from everything" floor, thresholds);
- **evaluation wordings** (:data:`EVAL`): reported only (``sleeplm eval``), never used for a
  choice. A test checks that the three sets share no wording.

Negation: "no apnea", "without spindles", "apnea-free" ask for the *absence* of an event;
:func:`negated_event` finds them so the search can say so instead of returning apneas. A
negation of something that is not an event name ("no airflow", "not breathing") is a
description of an event and is not a negation here.
"""

from __future__ import annotations

import re

from sleeplm_core.model.prompts import EVENT_TYPES

TRAIN: dict[str, tuple[str, ...]] = {
    "spindle": (
        "sleep spindle", "spindle on C3", "sleep spindles", "a spindle on the EEG", "spindle",
        "sigma burst", "a burst of sigma activity", "sigma spindle", "12-14 Hz spindle",
        "11 to 16 Hz burst", "spindle activity", "thalamocortical spindle",
        "a fast sleep spindle", "a slow frontal spindle", "spindle in N2",
        "waxing waning sigma burst", "spindle-shaped burst", "a short sigma train",
        "spindle event", "SS", "spindle on the central EEG", "sigma band burst",
        "a train of 13 Hz waves", "brief rhythmic 12 Hz activity", "a sleep spindle burst",
        "spindle lasting one second", "a half-second spindle", "a sigma-frequency oscillation",
        "fast waves of light sleep", "a typical N2 spindle", "spindle on C4",
    ),
    "k-complex": (
        "K-complex", "a K-complex on the EEG", "KC", "k complex", "K-complexes",
        "a large biphasic wave", "a sharp negative then positive wave", "a KC in N2",
        "evoked K-complex", "spontaneous K-complex", "a high-amplitude biphasic deflection",
        "K-complex on C3", "K-complex with a spindle", "a single slow biphasic wave",
        "N2 graphoelement", "a sharp negative EEG wave", "K complex in stage 2",
        "a K-complex over the vertex", "biphasic slow wave", "K-complex event",
        "a large negative deflection", "KC on the central EEG", "a K complex on C4",
        "a sudden large slow wave", "a big sharp wave in light sleep", "K-complex burst",
        "a K-complex following a sound", "an isolated K-complex", "K-complex activity",
        "an N2 K-complex", "a K-complex of half a second",
    ),
    "arousal": (
        "arousal", "cortical arousal", "an EEG arousal", "brief arousal", "micro-arousal",
        "microarousal", "EEG arousal", "ARO", "spontaneous arousal",
        "respiratory-related arousal", "an abrupt shift to faster EEG", "arousal from sleep",
        "an alpha intrusion", "a brief awakening", "a short wake-up", "arousal of 5 s",
        "cortical activation", "a sudden EEG frequency shift", "an arousal with EMG increase",
        "an arousal in N2", "an arousal in REM", "sleep fragmentation event",
        "a startle from sleep", "an arousal lasting seconds", "an awakening burst",
        "brief cortical arousal", "EEG speeding up for a few seconds",
        "an arousal after an apnea", "a transient arousal", "alpha burst arousal",
        "arousal event", "briefly awakens", "wakes briefly from sleep",
        "the brain wakes for a moment", "a momentary awakening",
    ),
    "apnea": (
        "obstructive apnea", "apnea", "breathing pause", "an apnea with no airflow",
        "obstructive sleep apnea event", "OSA event", "OA", "apnoea", "obstructive apnoea",
        "airflow cessation", "a pause in breathing", "breathing stops", "absent airflow",
        "cessation of airflow with effort", "an obstructive event", "airway obstruction",
        "a complete airway collapse", "mixed apnea", "an apneic episode", "respiratory pause",
        "no breathing for ten seconds", "airflow drops to zero", "a choking pause",
        "a stop in breathing", "flat airflow", "apnea lasting 20 s", "obstructed breathing",
        "an apnea event", "upper airway obstruction", "obstructive apneic event",
        "a breathing cessation",
    ),
    "central apnea": (
        "central apnea", "central apnea without effort", "CA", "central apnoea",
        "central sleep apnea event", "an apnea with no respiratory effort",
        "a pause with flat belts", "no effort and no airflow", "central breathing pause",
        "a central event", "absent respiratory drive", "apnea without chest movement",
        "a central respiratory pause", "loss of breathing effort", "central apneic episode",
        "cessation of effort and flow", "central apnea lasting 15 s",
        "a pause in breathing drive", "flat thoracic and abdominal belts",
        "a non-obstructive apnea", "periodic central apnea", "central sleep apnoea",
        "breathing effort stops", "a central respiratory event", "CSA event",
        "missing respiratory effort", "apnea with silent belts",
        "central pause after an arousal", "a central apnea in N1", "effortless apnea",
        "a drive-related apnea",
    ),
    "hypopnea": (
        "hypopnea", "a hypopnea with reduced airflow", "shallow breathing", "hypopnoea",
        "partial obstruction", "reduced airflow", "a partial breathing pause",
        "airflow reduced by half", "a 30 percent drop in flow", "H", "HYP",
        "an obstructive hypopnea", "a hypopnea event", "shallow breaths",
        "diminished airflow", "partial airway collapse", "underbreathing",
        "airflow limitation", "a hypopneic episode", "reduced breathing amplitude",
        "a partial respiratory event", "decreased ventilation", "hypoventilation episode",
        "low amplitude breathing", "hypopnea lasting 20 s", "partly blocked airway",
        "smaller breaths", "a flow reduction", "a central hypopnea", "a shallow spell",
        "hypopnea with desaturation", "weak breathing", "breathing weakens for a while",
        "weaker breaths",
    ),
    "desaturation": (
        "oxygen desaturation", "desaturation", "a drop in SpO2", "desat",
        "oxygen saturation falls", "SpO2 dip", "O2 desaturation", "hypoxemia",
        "a fall in oxygen", "oxygen dip", "a 4 percent desaturation", "a 3 percent drop",
        "low oxygen", "oximetry dip", "saturation drop", "SaO2 fall", "a dip in saturation",
        "oxygen level drops", "hypoxic episode", "falling blood oxygen",
        "a desaturation event", "SpO2 below baseline", "oxyhemoglobin desaturation",
        "a decrease in saturation", "oxygen drops", "an SpO2 nadir", "desaturation of 5%",
        "pulse oximeter dip", "ODI event", "a saturation trough", "oxygen desaturation event",
    ),
    "limb movement": (
        "limb movement", "leg movement", "a periodic limb movement", "PLM", "LM", "PLMS",
        "leg kick", "leg jerk", "tibialis burst", "anterior tibialis activation",
        "leg EMG burst", "a periodic leg movement", "a kicking leg", "limb jerk",
        "leg twitch", "restless leg movement", "a leg movement in sleep",
        "tibial EMG activity", "periodic limb movement of sleep", "foot movement",
        "leg muscle burst", "an isolated limb movement", "a limb movement event",
        "legs move", "leg jerks during sleep", "a burst on the leg EMG",
        "limb movement lasting 2 s", "movement of the legs", "a leg flick",
        "motor activity of the leg", "PLM event",
    ),
}
"""Training wordings per event type (the first ones are the canonical phrases of
``prompts.EVENT_TYPES``)."""

STAGE_TRAIN: dict[str, tuple[str, ...]] = {
    "W": (
        "wake", "awake", "wakefulness", "stage W", "W", "the subject is awake",
        "eyes open wake", "relaxed wake with alpha", "wake before sleep", "awake in bed",
        "wake after sleep onset", "WASO", "alert wake", "quiet wakefulness",
        "wake with eye blinks", "stage wake", "not asleep", "alpha rhythm with eyes closed",
        "lying awake", "awake period", "wake epoch", "an awake epoch", "wake with movement",
        "the patient is awake", "conscious and awake", "alpha-dominant wake", "being awake",
        "woken up", "wake state", "awake with high muscle tone", "wake time",
    ),
    "N1": (
        "N1", "stage N1", "stage 1", "S1", "light sleep stage 1", "drowsiness",
        "drowsy", "dozing", "sleep onset", "falling asleep", "transitional sleep",
        "theta drowsiness", "vertex sharp waves", "slow rolling eye movements",
        "NREM 1", "non-REM stage 1", "the lightest sleep", "nodding off",
        "N1 sleep", "stage one sleep", "hypnagogic state", "drifting off", "light dozing",
        "alpha dropout to theta", "sleep stage N1", "an N1 epoch", "first stage of sleep",
        "beginning to sleep", "a drowsy epoch", "transition from wake to sleep",
        "shallow sleep",
    ),
    "N2": (
        "N2", "stage N2", "stage 2", "S2", "light sleep", "NREM 2", "non-REM stage 2",
        "N2 sleep", "stage two sleep", "spindles and K-complexes", "sleep stage N2",
        "an N2 epoch", "stable light sleep", "consolidated light sleep", "stage 2 NREM",
        "intermediate sleep", "sleep with spindles", "light non-REM sleep",
        "sleep stage 2", "true sleep", "N2 period", "second stage of sleep",
        "theta background with spindles", "typical NREM sleep", "light NREM",
        "most of the night's sleep", "N2 with K-complexes", "settled sleep",
        "ordinary sleep", "stage two", "mid-depth sleep",
    ),
    "N3": (
        "N3", "stage N3", "stage 3", "S3", "S4", "stage 4", "deep sleep", "slow wave sleep",
        "SWS", "delta sleep", "NREM 3", "non-REM stage 3", "N3 sleep", "sleep stage N3",
        "an N3 epoch", "deepest sleep", "high amplitude delta waves", "slow waves",
        "stages 3 and 4", "restorative deep sleep", "delta activity over 20 percent",
        "deep non-REM sleep", "slow-wave sleep period", "very deep sleep", "heavy sleep",
        "slow oscillations", "delta-rich sleep", "third stage of sleep",
        "deep NREM sleep", "sound sleep", "stage three",
    ),
    "REM": (
        "REM sleep", "REM", "stage R", "R", "rapid eye movement sleep", "dream sleep",
        "paradoxical sleep", "stage REM", "REM period", "REM episode", "sleep stage REM",
        "a REM epoch", "rapid eye movements", "dreaming", "atonia with eye movements",
        "sawtooth waves", "REM with low muscle tone", "phasic REM", "tonic REM",
        "active sleep", "desynchronized sleep", "REM stage", "the dreaming stage",
        "rapid-eye-movement stage", "REM bout", "eyes darting in sleep",
        "low voltage mixed frequency with REMs", "muscle atonia", "the REM phase",
        "dream phase", "REMS",
    ),
}
"""Training wordings per scored stage (W, N1, N2, N3, REM)."""

DEV: dict[str, tuple[str, ...]] = {
    "apnea": ("no airflow for several seconds", "the patient stops breathing",
              "a blocked airway for a while", "respiration halts"),
    "hypopnea": ("breathing becomes shallow", "airflow partly reduced",
                 "weaker breathing for a while"),
    "desaturation": ("the oxygen level falls", "blood oxygen goes down",
                     "oxygen saturation dips"),
    "arousal": ("the sleeper briefly awakens", "a short awakening from sleep",
                "the brain briefly wakes"),
    "spindle": ("a short burst of sigma activity", "waxing and waning 12 to 14 Hz rhythm",
                "a brief spindle-like rhythm"),
    "limb movement": ("leg kicks during sleep", "a twitch of the leg",
                      "the foot jerks"),
}
"""Development wordings: the only wordings choices may use (none is in TRAIN or EVAL)."""

EVAL: dict[str, tuple[str, ...]] = {
    "apnea": ("breathing stops while asleep", "stopped breathing", "an episode of no airflow",
              "the airway closes completely", "a long pause between breaths"),
    "hypopnea": ("breathing gets weaker", "partial reduction of airflow",
                 "the breaths become small", "shallower breathing than usual"),
    "desaturation": ("oxygen goes down", "a dip in blood oxygen", "SpO2 decreases",
                     "the oximeter reading falls"),
    "arousal": ("the person wakes up briefly", "a sudden brief awakening",
                "short interruption of sleep", "the EEG briefly speeds up"),
    "spindle": ("a burst of fast brain waves during light sleep", "spindle burst",
                "sigma-band oscillation", "brief 13 Hz rhythm on the EEG"),
    "limb movement": ("the legs jerk", "a leg kick", "movement of the foot",
                      "tibialis muscle activation"),
}
"""Evaluation wordings: reported only, never used for a choice."""

FAR_DEV: tuple[str, ...] = (
    "quarterly tax return", "a red bicycle in the garden", "the price of bread",
    "football match results", "how to bake a cake", "the capital of France",
)
"""Development queries unrelated to sleep: the "far from everything" floor is chosen so that
they fall under it and every development wording stays over it."""

FAR_EVAL: tuple[str, ...] = (
    "stock market crash", "a recipe for lasagna", "the weather in Paris tomorrow",
    "train timetable to Berlin",
)
"""Evaluation queries unrelated to sleep (reported only)."""

NEGATED_EVAL: dict[str, tuple[str, ...]] = {
    "apnea": ("no apnea", "without apneas", "apnea-free breathing"),
    "spindle": ("no spindles", "absence of sleep spindles"),
    "arousal": ("no arousal", "sleep without arousals"),
    "limb movement": ("no leg movements",),
}
"""Negated queries: each must match nothing of its type (reported by ``sleeplm eval``)."""

_EVENT_WORDS = (
    r"apn(?:o)?eas?|hypopn(?:o)?eas?|spindles?|arousals?|desaturations?|desats?|"
    r"k[\s-]?complex(?:es)?|kcs?|limb movements?|leg movements?|plms?|leg kicks?|"
    r"leg jerks?|events?|awakenings?|movements?"
)
_NEGATION = re.compile(
    r"\b(?:no|not|without|absence of|absent|lack of|lacking|free of|never|none|zero|"
    r"nothing like)\b(?:\s+\w+){0,2}?\s+(?:an?\s+)?(?P<what>" + _EVENT_WORDS + r")\b"
    r"|\b(?P<free>" + _EVENT_WORDS + r")[\s-]free\b",
    re.IGNORECASE,
)


def negated_event(query: str) -> str | None:
    """The event word a query negates ("no apnea" -> ``"apnea"``), or ``None``.

    Only negations of an event *name* count: "no airflow for ten seconds" describes an
    apnea and is not a negation.
    """
    m = _NEGATION.search(query)
    if m is None:
        return None
    return (m.group("what") or m.group("free")).lower()


def stage_train() -> dict[str, tuple[str, ...]]:
    """Training wordings per scored stage."""
    return STAGE_TRAIN


def training_wordings(event_type: str) -> tuple[str, ...]:
    """Training wordings of one event type: its canonical phrases first, then the bank's."""
    canon = next((t.phrases for t in EVENT_TYPES if t.name == event_type), ())
    return tuple(dict.fromkeys([*canon, *TRAIN.get(event_type, ())]))
