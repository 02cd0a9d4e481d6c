"""The wheel carries the resources and installs into a fresh venv; the package list is whole."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once from this checkout; the build must warn about no package."""
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(out), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    log = proc.stdout + proc.stderr
    assert "would be ignored" not in log, "setuptools ignores a data folder: list it in packages"
    (built,) = out.glob("*.whl")
    return built


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
    # every associated type is defined by our shared-mime-info XML (no font type for BDF)
    mime = ET.parse(ROOT / "packaging" / "sleepviewer-mime.xml").getroot()
    ns = "{http://www.freedesktop.org/standards/shared-mime-info}"
    defined = {m.get("type"): m for m in mime.iter(f"{ns}mime-type")}
    wanted = [m for m in fields["MimeType"].split(";") if m]
    assert wanted and set(wanted) == set(defined)
    globs = {g.get("pattern") for m in defined.values() for g in m.iter(f"{ns}glob")}
    assert {"*.edf", "*.bdf"} <= globs


def test_mime_database_accepts_our_types(tmp_path: Path) -> None:
    tool = shutil.which("update-mime-database")
    if tool is None:
        pytest.skip("update-mime-database (shared-mime-info) is not installed")
    packages = tmp_path / "mime" / "packages"
    packages.mkdir(parents=True)
    shutil.copy(ROOT / "packaging" / "sleepviewer-mime.xml", packages)
    proc = subprocess.run([tool, str(tmp_path / "mime")], capture_output=True, text=True)
    # (it notes on stderr that tmp_path is not a searched folder: fine here)
    assert proc.returncode == 0 and "error" not in proc.stderr.lower(), proc.stderr
    globs = (tmp_path / "mime" / "globs2").read_text()
    assert ":application/x-edf:*.edf" in globs and ":application/x-biosemi-bdf:*.bdf" in globs
    assert b"BIOSEMI" in (tmp_path / "mime" / "magic").read_bytes()


def test_app_icons_exist_for_every_platform() -> None:
    from PIL import Image

    icons = ROOT / "resources" / "icons"
    with Image.open(icons / "sleepviewer.ico") as ico:
        assert ico.format == "ICO" and (256, 256) in ico.info["sizes"]
    with Image.open(icons / "sleepviewer.icns") as icns:
        assert icns.format == "ICNS" and icns.size[0] >= 512
    with Image.open(icons / "sleepviewer.png") as png:
        assert png.size == (256, 256)


@pytest.mark.slow
def test_wheel_contains_resources(wheel: Path) -> None:
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


def _fresh_venv(path: Path) -> Path:
    """A new venv that sees this environment's third-party packages but not our own.

    The dependencies are offered through a folder of links to this venv's site-packages
    (our editable install left out), so that pip resolves the wheel's declared requirements
    offline and without downloading torch again; the wheel itself is installed for real.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    deps = path / "deps"
    deps.mkdir()
    ours = ("sleeplm_viewer", "__editable__", "sleeplm_core", "sleepviewer", "sleeplm_resources")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(ours) or entry.suffix == ".pth" or entry.name == "__pycache__":
            continue
        (deps / entry.name).symlink_to(entry)
    (site,) = (path / "lib").glob("python3*/site-packages")
    (site / "_deps.pth").write_text(f"{deps}\n")
    return path / "bin" / "python"


@pytest.mark.slow
def test_wheel_installs_and_stages_the_sample_night(wheel: Path, tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path / "venv")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "2"}
    env.pop("PYTHONPATH", None)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    check = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, env=env
    )
    assert "sleeplm-viewer" not in check.stdout, check.stdout
    bindir = python.parent
    for command in ("sleeplm", "sleepviewer"):
        ver = subprocess.run(
            [str(bindir / command), "--version"], capture_output=True, text=True, env=env
        )
        assert ver.returncode == 0 and "0.1.0" in ver.stdout, ver.stdout + ver.stderr
    # the wheel's resources, read from the installed copy (outside this checkout)
    where = subprocess.run(
        [str(python), "-c", "import sleeplm_core.resources as r; print(r.resource_path('sample'))"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout.strip()  # fmt: skip
    assert str(tmp_path / "venv") in where and str(ROOT) not in where
    night = tmp_path / "night.edf"
    shutil.copy(Path(where) / "sample_night.edf", night)
    # the default path needs neither transformers nor psutil: make importing them fail
    script = (
        "import sys; sys.modules['transformers'] = None; sys.modules['psutil'] = None\n"
        "from sleeplm_core.cli.main import main\n"
        "sys.exit(main(['-q', 'stage', sys.argv[1], '--out', sys.argv[2]]))\n"
    )
    hyp = tmp_path / "night-stages.csv"
    run = subprocess.run(
        [str(python), "-c", script, str(night), str(hyp)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[-1].startswith("model: sleeplm") and any("N2" in line for line in lines)
    rows = hyp.read_text().splitlines()
    assert rows[0].startswith("onset,duration,description") and len(rows) > 1
    # the viewer from the wheel opens its bundled sample night
    shot = tmp_path / "window.png"
    view = subprocess.run(
        [str(bindir / "sleepviewer"), "--screenshot", str(shot)],
        capture_output=True, text=True, env={**env, "QT_QPA_PLATFORM": "offscreen"}, timeout=300,
    )  # fmt: skip
    assert view.returncode == 0 and shot.stat().st_size > 10_000, view.stderr[-2000:]
