"""SleepLM Viewer: a PSG workstation (PyQt6 + pyqtgraph) with the SleepLM model inside."""

__version__ = "0.1.0"
