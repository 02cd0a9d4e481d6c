"""``sleepviewer``: start the PSG workstation.

Usage::

    sleepviewer [FILE] [--start S] [--montage NAME] [--time-base S] [--theme light|dark]
    sleepviewer FILE --annotations SCORING   # load this scoring file (default: the one beside FILE)
    sleepviewer FILE --screenshot OUT.png    # render one page to PNG and exit (works offscreen)
    sleepviewer FILE --report OUT.pdf        # clinical report (PDF or HTML), no window
    sleepviewer FILE --query "apnea with desaturation"   # open and search the night in words

Without FILE the bundled sample night (``resources/sample/sample_night.edf``) opens when it is
installed. A file that cannot be read is reported as one line (dialog, or stderr with
``--screenshot``; exit status 2).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PyQt6.QtCore import QEventLoop, QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from sleeplm_core.resources import resource_path
from sleepviewer import montage_views, montages

SCREENSHOT_SIZE = (1600, 900)
SEARCH_TIMEOUT_S = 600.0
"""How long ``--query --screenshot`` waits for the night's embedding and the search."""
CAPTION_TIMEOUT_S = 20.0
"""How long it then waits for the generated caption of the first match's epoch."""


def _version() -> str:
    from sleeplm_core import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser (later flags such as --query/--report go here)."""
    p = argparse.ArgumentParser(
        prog="sleepviewer", description="SleepLM Viewer: a PSG workstation."
    )
    p.add_argument("--version", action="version", version=f"sleepviewer {_version()}")
    p.add_argument("file", nargs="?", type=Path, help="EDF/EDF+/BDF recording (default: sample)")
    p.add_argument("--annotations", type=Path, default=None, metavar="SCORING",
                   help="scoring file to show with FILE (NSRR/Profusion XML, Hypnogram EDF, "
                   "CSV); by default the one lying beside FILE is loaded")
    p.add_argument("--start", type=float, default=None, metavar="S",
                   help="page start, seconds from the recording start")
    p.add_argument("--montage", default=None, metavar="NAME",
                   choices=[montage_views.AUTOMATIC, montages.AS_RECORDED, *montages.PRESETS],
                   help="montage preset: %(choices)s")
    p.add_argument("--time-base", type=float, default=None, metavar="S",
                   help="page length in seconds (10 … 7200; 0 = whole night)")
    p.add_argument("--theme", choices=("light", "dark"), default=None)
    p.add_argument("--screenshot", type=Path, default=None, metavar="OUT.png",
                   help="render the window to a PNG and exit")
    p.add_argument("--query", default=None, metavar="TEXT",
                   help='search the night in words once it is open, e.g. "apnea with desaturation"')
    p.add_argument("--model", type=Path, default=None, metavar="DIR",
                   help="checkpoint folder for the language features (default: the Model "
                        "menu's choice, else the bundled model), e.g. an imported SleepLM-Base")
    p.add_argument("--report", type=Path, default=None, metavar="OUT.pdf|OUT.html",
                   help="write the clinical report without opening a window and exit")
    return p


def default_file() -> Path | None:
    """Return the bundled sample night if it is installed."""
    path = resource_path("sample", "sample_night.edf")
    return path if path.is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the viewer; return the exit status."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.report is not None:
        return _report(args.file or default_file(), args.report)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("SleepLM")
    app.setApplicationName("SleepLM Viewer")
    from sleepviewer.widgets.main_window import MainWindow, warm_imports

    warm_imports()
    errors: list[str] = []
    shot = args.screenshot is not None
    if shot:  # a scripted snapshot uses default preferences and leaves no trace
        tmp = tempfile.mkdtemp(prefix="sleepviewer-")
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, report_error=errors.append)
        window.resize(*SCREENSHOT_SIZE)
        if args.query or args.model:  # the snapshot shows the query's match, the captions
            window.language = (_language_controller(window) if args.model is None
                               else _language_controller(window, args.model))
    else:
        window = MainWindow()
        window.annotations_in_background = True
        window.language = _language_controller(window)
        window.model_menu = _model_menu(window)  # type: ignore[attr-defined]
        if args.model is not None and window.language is not None:
            window.language.host.set_model(args.model)  # type: ignore[attr-defined]
    _apply_view_args(window, args)
    window.show()
    path = args.file or default_file()
    if path is not None:
        window.open_file(path, start_s=args.start, annotations=args.annotations)
        if args.time_base is not None:
            window.set_time_base(args.time_base)
    if args.query and getattr(window, "language", None) is not None:
        _run_query(window, args.query)
    if shot:
        try:
            return _screenshot(app, window, args.screenshot, errors,
                               wait_for_search=bool(args.query),
                               wait_for_captions=args.model is not None)
        finally:  # the throw-away settings folder goes too: a snapshot leaves no trace
            settings.sync()
            shutil.rmtree(tmp, ignore_errors=True)
    return int(app.exec())


def _run_query(window: object, query: str) -> None:
    """Type ``query`` into the search bar and run it (it waits for the night's embedding)."""
    language = window.language  # type: ignore[attr-defined]
    language.focus_search()
    language.query_bar.edit.setText(query)
    language.query_bar.run()


def _report(path: Path | None, out: Path) -> int:
    from sleeplm_core.errors import SleepLMError
    from sleepviewer.report.cli import build_report_headless

    if path is None:
        print("sleepviewer --report needs a FILE (no sample night is installed)", file=sys.stderr)
        return 2
    try:
        written = build_report_headless(path, out)
    except SleepLMError as exc:
        print(exc.one_line(), file=sys.stderr)
        return 2
    print(written)
    return 0


def _language_controller(window: object, model: Path | None = None) -> object | None:
    """Attach the SleepLM search/caption docks (the model loads in its worker thread)."""
    try:
        from sleepviewer.language import LanguageController
        from sleepviewer.workers import load_predictor
    except ImportError as exc:  # the viewer works without the model stack
        print(f"SleepLM features unavailable: {exc}", file=sys.stderr)
        return None
    factory = load_predictor(model) if model is not None else None
    return LanguageController(window, predictor_factory=factory)  # type: ignore[arg-type]


def _model_menu(window: object) -> object:
    """Attach the Model menu (fine-tune, which checkpoint the language features use)."""
    from sleepviewer.model_menu import ModelMenuController

    return ModelMenuController(window, getattr(window, "language", None))  # type: ignore[arg-type]


def _apply_view_args(window: object, args: argparse.Namespace) -> None:
    from sleepviewer.widgets.main_window import MainWindow

    assert isinstance(window, MainWindow)
    if args.theme:
        window.set_theme(args.theme)
    if args.montage:
        window.set_montage(args.montage)
    if args.time_base is not None:
        window.state.duration_s = args.time_base if args.time_base > 0 else window.state.duration_s


def _screenshot(
    app: QApplication,
    window: object,
    out: Path,
    errors: list[str],
    *,
    wait_for_search: bool = False,
    wait_for_captions: bool = False,
    timeout_s: float = SEARCH_TIMEOUT_S,
) -> int:
    """Render the window to ``out`` and quit.

    With a query, once its first match is shown and captioned; with ``wait_for_captions``
    (``--model``), once the page's generated captions have arrived.
    """
    from sleepviewer.model_messages import CaptionResponse, SearchResponse
    from sleepviewer.widgets.main_window import MainWindow

    assert isinstance(window, MainWindow)
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        window.close()
        return 2
    status: list[int] = []

    def shoot() -> None:
        window.refresh()  # sizes are final now: redraw at the real width
        app.processEvents()
        dock = getattr(window, "annotation_dock", None)
        if dock is not None and dock.table.currentIndex().isValid():
            dock.table.scrollTo(dock.table.currentIndex())  # laid out before the final size
            app.processEvents()
        ok = window.save_screenshot(out)
        status.append(0 if ok else 1)
        if not ok:
            print(f"{out}: could not write the PNG", file=sys.stderr)
        window.close()
        loop.quit()

    # A local loop, not app.exec()/app.quit(): quitting the application object would also end
    # event loops that run after this one in the same process (tests, embedding hosts).
    loop = QEventLoop()
    language = getattr(window, "language", None)
    if language is not None and wait_for_captions and not wait_for_search:
        def on_captioned(response: object) -> None:
            if isinstance(response, CaptionResponse):
                QTimer.singleShot(300, shoot_first)

        fired: list[bool] = []

        def shoot_first() -> None:
            if not fired:
                fired.append(True)
                shoot()

        language.host.finished.connect(on_captioned)
        QTimer.singleShot(int(timeout_s * 1000), shoot_first)
    elif not wait_for_search or language is None:
        QTimer.singleShot(200, shoot)
    else:
        done: list[bool] = []
        shot: list[bool] = []

        def shoot_once() -> None:
            if not shot:
                shot.append(True)
                shoot()

        def finish() -> None:  # show the first match (if any), then shoot once it is captioned
            if done:
                return
            done.append(True)
            if language.results_dock.next_result() is None:
                print("sleepviewer: the query found nothing that passed the threshold",
                      file=sys.stderr)
                QTimer.singleShot(500, shoot_once)
            else:
                QTimer.singleShot(int(CAPTION_TIMEOUT_S * 1000), shoot_once)

        def on_finished(response: object) -> None:
            if isinstance(response, SearchResponse):
                finish()
            elif isinstance(response, CaptionResponse) and done:
                QTimer.singleShot(300, shoot_once)  # the match's epoch is described

        def on_failed(failure: object) -> None:
            if getattr(failure, "kind", "") in ("search", "embed"):
                print(f"sleepviewer: {getattr(failure, 'message', failure)}", file=sys.stderr)
                finish()

        language.host.finished.connect(on_finished)
        language.host.requestFailed.connect(on_failed)
        QTimer.singleShot(int(timeout_s * 1000), finish)
    loop.exec()
    return status[0] if status else 1


if __name__ == "__main__":
    raise SystemExit(main())
