"""The real window under Xvfb: ``sleepviewer FILE --screenshot out.png`` renders a page."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _command() -> list[str]:
    script = Path(sys.executable).with_name("sleepviewer")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sleepviewer.app"]


@pytest.mark.slow
def test_screenshot_of_a_real_window(small_edf, tmp_path):
    xvfb = shutil.which("xvfb-run")
    if xvfb is None:
        pytest.skip("xvfb-run is not installed (apt-get install xvfb xauth)")
    out = tmp_path / "out.png"
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["QT_QPA_PLATFORM"] = "xcb"
    env["HOME"] = str(tmp_path)  # no user settings leak in or out
    proc = subprocess.run(
        [xvfb, "-a", "-s", "-screen 0 1920x1080x24", *_command(), str(small_edf),
         "--start", "60", "--screenshot", str(out)],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.is_file() and out.stat().st_size > 10_000

    from PyQt6.QtGui import QImage

    img = QImage(str(out))
    assert img.width() >= 800 and img.height() >= 500
    colors = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colors) > 10  # traces, labels and grid, not a blank window


def test_screenshot_of_a_bad_file_exits_2(bad_edf, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    proc = subprocess.run(
        [*_command(), str(bad_edf), "--screenshot", str(tmp_path / "x.png")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "broken.edf" in proc.stderr and not (tmp_path / "x.png").exists()
