"""Render resources/icons/sleepviewer.svg into the per-platform app icons (committed).

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py

Writes ``resources/icons/sleepviewer.png`` (256 px, Linux), ``sleepviewer.ico`` (16-256 px,
Windows) and ``sleepviewer.icns`` (16-1024 px, macOS). Qt draws the SVG; Pillow writes the
containers. Run it again after changing the SVG.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def render(size: int) -> bytes:
    """The SVG drawn at ``size`` x ``size`` pixels, as PNG bytes."""
    from PyQt6.QtCore import QBuffer, QIODevice, Qt
    from PyQt6.QtGui import QImage, QPainter
    from PyQt6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(ICONS / "sleepviewer.svg"))
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    return bytes(buf.data())


def main() -> int:
    from PIL import Image
    from PyQt6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (Qt needs it)
    big = Image.open(io.BytesIO(render(1024))).convert("RGBA")
    (ICONS / "sleepviewer.png").write_bytes(render(256))
    big.save(ICONS / "sleepviewer.ico", sizes=ICO_SIZES)
    big.save(ICONS / "sleepviewer.icns")
    for name in ("sleepviewer.png", "sleepviewer.ico", "sleepviewer.icns"):
        print(ICONS / name, (ICONS / name).stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
