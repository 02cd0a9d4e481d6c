"""Synthetic polysomnography nights with exact ground truth (see :mod:`.night`)."""

from sleeplm_core.synth.night import SyntheticNight, generate_night, write_night

__all__ = ["SyntheticNight", "generate_night", "write_night"]
