"""The wheel carries the resources; the package list in pyproject covers the whole tree."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _declared_packages() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(data["tool"]["setuptools"]["packages"])


def test_every_package_is_declared() -> None:
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("sleeplm_core", "sleepviewer")
        for p in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    missing = found - _declared_packages()
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_desktop_entry_is_valid() -> None:
    text = (ROOT / "packaging" / "sleepviewer.desktop").read_text()
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert fields["Type"] == "Application"
    assert fields["Exec"].startswith("sleepviewer")
    assert (ROOT / "resources" / "icons" / f"{fields['Icon']}.svg").is_file()


@pytest.mark.slow
def test_wheel_contains_resources(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        "sleeplm_resources/channel_types.csv",
        "sleeplm_resources/icons/sleepviewer.svg",
        "sleeplm_resources/sample/sample_night.edf",
        "sleeplm_core/configs/sleeplm-tiny.json",
    ]
    for name in expected:
        assert name in names, f"{name} missing from {wheel.name}"
    models = [n for n in names if n.startswith("sleeplm_resources/models/")]
    if any((ROOT / "resources" / "models").glob("*.safetensors")):
        assert any(n.endswith(".safetensors") for n in models), "checkpoint missing from wheel"
    assert not any(n.startswith("tests/") for n in names)
