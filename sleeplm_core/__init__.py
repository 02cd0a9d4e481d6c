"""SleepLM core: PSG reading, synthetic nights, captions, the ReCoCa model and its training.

This package never imports Qt; the viewer (``sleepviewer``) builds on it.
"""

__version__ = "0.1.0"
