"""The ``sleeplm`` command line: lazy registry, plain help, --version, -q/-v, no global env."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sleeplm_core import __version__
from sleeplm_core.cli.main import SUBCOMMANDS, build_parser, main, plain_text
from sleeplm_core.cli.progress import progress_bar, wants_bar


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"sleeplm {__version__}"


def test_top_level_help_imports_no_subcommand() -> None:
    code = (
        "import sys\n"
        "from sleeplm_core.cli.main import build_parser\n"
        "text = build_parser([]).format_help()\n"
        "loaded = [m for m in sys.modules if m.startswith('sleeplm_core.cli.') "
        "and m != 'sleeplm_core.cli.main']\n"
        "heavy = [m for m in ('numpy', 'scipy', 'torch', 'mne') if m in sys.modules]\n"
        "print(loaded, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


def test_every_subcommand_has_one_line_help_and_plain_text() -> None:
    listing = build_parser([]).format_help()
    for name, (_, line) in SUBCOMMANDS.items():
        assert name in listing and line.split()[0] in listing
        assert "\n" not in line and line
        parser = build_parser([name])
        sub = parser._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        text = sub.format_help()
        for markup in ("``", ":mod:", ":class:", ":func:", ":meth:", "::\n"):
            assert markup not in text, (name, markup)
        assert sub.description, name
        assert "-q, --quiet" in text and "-v, --verbose" in text, name


def test_plain_text() -> None:
    assert plain_text("see :mod:`sleeplm_core.io` and ``--head``::\n") == (
        "see sleeplm_core.io and --head:\n"
    )


def test_stage_out_with_an_unknown_suffix_fails_in_one_line(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sleeplm_core import sample_night

    code = main(["-q", "stage", str(sample_night()), "--out", str(tmp_path / "h.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "use .csv, .xml or .edf" in err
    assert not list(tmp_path.iterdir())


def test_progress_is_quiet_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert not wants_bar(quiet=True)
    assert not wants_bar(quiet=False)  # pytest captures stderr: not a terminal
    with progress_bar("x", quiet=False) as progress:
        progress(1, 2)
    assert capsys.readouterr().err == ""


def test_loading_the_text_encoder_leaves_the_environment_alone() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    code = (
        "import os\n"
        "from sleeplm_core.model.text_encoder import load_backbone\n"
        "load_backbone('native')\n"
        "print(sorted(k for k in os.environ if k.startswith(('HF_', 'TRANSFORMERS_'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"
