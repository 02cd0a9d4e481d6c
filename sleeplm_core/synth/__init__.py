"""Synthetic polysomnography nights with exact ground truth.

=================================================  =========================================
``generate_night(*, hours, seed, ahi=None, **kw)``  seeded night -> :class:`SyntheticNight`
``write_night(night, "out.edf")``                   EDF+ (signals, annotations) + NSRR XML
=================================================  =========================================

Settings (``**kw``) are listed in :mod:`sleeplm_core.synth.settings`; the physiology of each
signal is described in the module that makes it (:mod:`.hypnogram_model`, :mod:`.eeg`,
:mod:`.eog_emg`, :mod:`.cardiorespiratory`, :mod:`.events`, :mod:`.artefacts`).
"""

from sleeplm_core.synth.night import SyntheticNight, generate_night, write_night

__all__ = ["SyntheticNight", "generate_night", "write_night"]
