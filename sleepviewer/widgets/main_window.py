"""MainWindow: menus, status bar, navigation and the docks around the TraceView.

The window owns the :class:`~sleepviewer.state.ViewState` and the open recording; every
gesture changes the state and asks the views to redraw. Keys come from the one key table
(:mod:`sleepviewer.keys`); an action named ``x`` runs the slot ``_on_action_x`` (those slots
live in :mod:`sleepviewer.widgets.window_actions`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from PyQt6 import sip
from PyQt6.QtCore import QEvent, QSettings, Qt, QTimer, QUrl
from PyQt6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
)
from PyQt6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QWidget,
)

from sleeplm_core.errors import SleepLMError
from sleeplm_core.stages import EPOCH_S
from sleepviewer import keys, montage_views, montages, theme
from sleepviewer.items.epoch_grid import format_clock
from sleepviewer.scoring_files import load_scoring
from sleepviewer.state import (
    TIME_BASES_S,
    RecordingLike,
    ViewState,
)
from sleepviewer.widgets.channel_dialog import ChannelDialog
from sleepviewer.widgets.trace_view import TraceView
from sleepviewer.widgets.window_actions import APPLICATION, WindowActions

ORGANIZATION = "SleepLM"
MAX_RECENT = 10

ErrorReporter = Callable[[str], None]
Opener = Callable[[Path], RecordingLike]


def _import_readers() -> None:
    import mne.io.edf  # noqa: F401  (lazily loaded by MNE: ~0.4 s of imports)

    import sleeplm_core.io.recording  # noqa: F401


def warm_imports() -> threading.Thread:
    """Import the EDF reader stack in a background thread while the window comes up.

    Python imports are thread-safe (the import lock); the first ``open_file`` then does not
    pay for importing MNE's EDF reader.
    """
    thread = threading.Thread(target=_import_readers, name="warm-imports", daemon=True)
    thread.start()
    return thread


def open_recording(path: Path) -> RecordingLike:
    """Open a recording with the project's one reader (imported lazily: it pulls in MNE)."""
    from sleeplm_core.io.recording import Recording

    return Recording.open(path)


class MainWindow(WindowActions, QMainWindow):
    """The PSG workstation window.

    Parameters
    ----------
    settings : QSettings or None
        Where preferences and recent files live (default: organization "SleepLM",
        application "SleepLM Viewer").
    report_error : callable or None
        ``(one_line) -> None`` shows a failure; default: a non-modal ``QMessageBox``.
    opener : callable or None
        ``(path) -> recording``; default :func:`open_recording`.
    parent : QWidget or None
        Qt parent.
    """

    def __init__(
        self,
        settings: QSettings | None = None,
        report_error: ErrorReporter | None = None,
        opener: Opener | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or QSettings(ORGANIZATION, APPLICATION)
        self._report_error = report_error or self._show_error_box
        self._opener = opener or open_recording
        self.recording: RecordingLike | None = None
        self.state = ViewState(theme=self._setting_theme())
        self.state.duration_s = float(self.settings.value("view/time_base", EPOCH_S, float))
        self.state.montage = str(self.settings.value("view/montage", montage_views.AUTOMATIC))
        cal = float(self.settings.value("view/px_per_mm", 0.0, float))
        self.state.px_per_mm = cal if cal > 0 else None
        self.user_derivations: list[montages.Derivation] = []
        self.store: Any = None
        self.annotation_overlay: Any = None
        self.annotation_dock: Any = None
        self.hypnogram_view: Any = None
        self.hypnogram_dock: QDockWidget | None = None
        self.language: Any = None  # LanguageController, attached by app.main
        self.spectrogram_enabled = True
        self.overview_in_background = True
        self.annotations_in_background = False  # the app: True (first page before the parse)
        self.last_open_s = 0.0
        self.setWindowTitle(APPLICATION)
        self.setAcceptDrops(True)
        self._build_central()
        self._build_actions()
        self._build_menus()
        self._build_status_bar()
        self._apply_theme()
        self.resize(1400, 860)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    # -- construction -----------------------------------------------------------------------
    def _build_central(self) -> None:
        self.trace_view = TraceView(self)
        self.trace_view.pageRendered.connect(self._on_trace_view_pageRendered)
        self.trace_view.channelsChanged.connect(self._on_trace_view_channelsChanged)
        self.trace_view.channelSettingsRequested.connect(self.open_channel_dialog)
        self.setCentralWidget(self.trace_view)

    def _build_actions(self) -> None:
        self.actions_by_name: dict[str, QAction] = {}
        for b in keys.KEY_TABLE:
            if not b.bound_by_window:
                continue
            act = QAction(b.description, self)
            act.setShortcuts([QKeySequence(k) for k in b.keys])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            slot = getattr(self, f"_on_action_{b.action}", None)
            if slot is None:
                act.triggered.connect(lambda _=False, a=b.action: self._on_action_score(a))
            else:
                act.triggered.connect(slot)
            self.addAction(act)
            self.actions_by_name[b.action] = act
        for name, on in (("toggle_filters", self.state.filters_enabled),
                         ("toggle_clipping", self.state.clip_traces)):
            self.actions_by_name[name].setCheckable(True)
            self.actions_by_name[name].setChecked(on)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        a = self.actions_by_name
        file_menu = bar.addMenu("&File")
        file_menu.addAction(a["open"])
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addAction(a["import_annotations"])
        file_menu.addAction(a["import_channel_scoring"])
        self.export_action = a["export"]
        self.export_action.setEnabled(False)  # until a recording is open
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(a["quit"])
        self._rebuild_recent_menu()
        self.edit_menu = bar.addMenu("&Edit")
        self.edit_menu.setEnabled(False)
        view = bar.addMenu("&View")
        self._build_time_base_menu(view.addMenu("&Time base"))
        self._build_montage_menu(view.addMenu("&Montage"))
        self._build_theme_menu(view.addMenu("T&heme"))
        channels = view.addMenu("&Channels")
        channels.addAction(a["channel_settings"])
        channels.addAction(a["toggle_filters"])
        channels.addAction(a["toggle_clipping"])
        channels.addAction("Show all channels", self.trace_view.show_all_channels)
        view.addSeparator()
        for name in ("go_to", "gain_up", "gain_down", "longer_time_base", "shorter_time_base",
                     "calibrate_screen"):
            view.addAction(a[name])
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(a["shortcuts"])
        help_menu.addAction("&About", self._on_action_about)

    def _build_time_base_menu(self, menu: QMenu) -> None:
        self.time_base_group = QActionGroup(self)
        self.time_base_actions: dict[float, QAction] = {}
        for d in (*TIME_BASES_S, 0.0):
            text = "Whole night" if d == 0 else _time_base_text(d)
            act = menu.addAction(text)
            act.setCheckable(True)
            act.setData(d)
            self.time_base_group.addAction(act)
            self.time_base_actions[d] = act
        self.time_base_group.triggered.connect(self._on_time_base_group_triggered)
        self._check_time_base()

    def _build_montage_menu(self, menu: QMenu) -> None:
        self.montage_group = QActionGroup(self)
        for name in (montage_views.AUTOMATIC, montages.AS_RECORDED, *montages.PRESETS):
            act = menu.addAction(name)
            act.setCheckable(True)
            act.setChecked(name == self.state.montage)
            act.setData(name)
            self.montage_group.addAction(act)
        self.montage_group.triggered.connect(
            lambda act: self.set_montage(str(act.data()))
        )

    def _build_theme_menu(self, menu: QMenu) -> None:
        self.theme_group = QActionGroup(self)
        for name in ("light", "dark"):
            act = menu.addAction(name.capitalize())
            act.setCheckable(True)
            act.setChecked(name == self.state.theme)
            act.setData(name)
            self.theme_group.addAction(act)
        self.theme_group.triggered.connect(lambda act: self.set_theme(str(act.data())))

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.clock_label = QLabel("No recording", self)
        self.epoch_label = QLabel("", self)
        self.decimation_label = QLabel("", self)
        self.filter_label = QLabel("", self)
        # Permanent widgets: messages from other parts ("Loading the model…") never hide them.
        for label in (self.clock_label, self.epoch_label, self.filter_label,
                      self.decimation_label):
            label.setContentsMargins(10, 0, 10, 0)
            bar.addPermanentWidget(label)

    # -- opening ----------------------------------------------------------------------------
    def open_file(self, path: str | Path, start_s: float | None = None,
                  annotations: str | Path | None = None) -> bool:
        """Open a recording; on failure show the one-line reason and keep the current one.

        Parameters
        ----------
        path : str or Path
            EDF/EDF+/BDF file.
        start_s : float or None
            Page start; default the beginning.
        annotations : str or Path or None
            Scoring file to load with it; default the one lying beside it
            (:mod:`sleepviewer.scoring_files`). A bad one is a status-bar line, not a failure.

        Returns
        -------
        bool
            Whether the file was opened.
        """
        path = Path(path)
        t0 = time.perf_counter()
        try:
            rec = self._opener(path)
        except SleepLMError as exc:
            self._report_error(exc.one_line())
            return False
        except (OSError, ValueError) as exc:  # anything a reader may raise on a bad file
            self._report_error(f"{path}: {' '.join(str(exc).split()) or type(exc).__name__}")
            return False
        unsaved = self._flush_annotations()
        if unsaved is not None:  # keep the current recording: its edits are not on disk
            if hasattr(rec, "close"):
                with contextlib.suppress(Exception):
                    rec.close()
            self._report_error(f"{unsaved}; {path.name} was not opened")
            return False
        scoring_note = load_scoring(rec, path, annotations)
        self._close_recording()
        self.recording = rec
        self._setup_state(rec)
        if self.annotations_in_background:
            self._attach_annotations_later(rec)
        else:
            self._attach_annotations(rec)
        self.trace_view.set_recording(rec, self.state)
        if start_s is not None:
            self.state.go_to(start_s)
        self.setWindowTitle(f"{path.name} — {APPLICATION}")
        self._remember_recent(path)
        self.export_action.setEnabled(True)
        self.refresh()
        if scoring_note:
            self.statusBar().showMessage(scoring_note, 30000)
        self.last_open_s = time.perf_counter() - t0
        self._schedule_overview()
        return True

    def _schedule_overview(self) -> None:
        if self.overview_in_background:
            QTimer.singleShot(300, self.trace_view.prepare_overview)

    def _setup_state(self, rec: RecordingLike) -> None:
        self.state.recording_duration_s = float(rec.duration_s)
        self.state.start_s = 0.0
        if self.state.duration_s <= 0 or self.state.duration_s > rec.duration_s:
            self.state.duration_s = min(max(self.state.duration_s, EPOCH_S), rec.duration_s)
        self.user_derivations = []
        self.state.channels = []
        self._apply_montage_rows(self.state.montage)

    def _apply_montage_rows(self, name: str) -> None:
        if self.recording is None:
            return
        old = {c.name: c for c in self.state.channels}
        self.state.channels = montage_views.build_views(
            self.recording, name, self.user_derivations, old, self.settings)
        self.state.montage = name

    def _flush_annotations(self) -> str | None:
        """Write pending annotation edits now; return why they are still unsaved, if so."""
        return None if self.store is None else self.store.flush_or_reason()

    def _close_recording(self) -> None:
        self.trace_view.shutdown()
        if self.store is not None:
            self._flush_annotations()
        if self.hypnogram_view is not None:
            self.hypnogram_view.cancel_spectrogram()
        for dock in (self.annotation_dock, self.hypnogram_dock):
            if dock is not None:
                self.removeDockWidget(dock)
                dock.deleteLater()
        if self.annotation_overlay is not None:
            self._detach_overlay()
        self.annotation_dock = self.hypnogram_dock = None
        self.hypnogram_view = self.annotation_overlay = None
        self.store = None
        if self.recording is not None and hasattr(self.recording, "close"):
            with contextlib.suppress(Exception):
                self.recording.close()
        self.recording = None

    def _attach_annotations_later(self, rec: RecordingLike) -> None:
        from sleepviewer.annotation_loader import AnnotationLoader

        loader = AnnotationLoader(self)
        loader.loaded.connect(self._on_annotation_loader_loaded)
        loader.start(rec)

    def _on_annotation_loader_loaded(self, rec: RecordingLike) -> None:
        self.sender().deleteLater()
        if rec is self.recording and self.store is None:
            self._attach_annotations(rec)
            self.refresh()

    def _attach_annotations(self, rec: RecordingLike) -> None:
        """Connect the annotation store, its list, the overlay and the hypnogram."""
        try:
            from sleepviewer.annotation_store import AnnotationStore
            from sleepviewer.items.annotation_item import AnnotationOverlay
            from sleepviewer.widgets.annotation_dock import AnnotationDock
        except ImportError:  # viewer part 2 not in this checkout: traces only
            return
        self.store = AnnotationStore.for_recording(rec, parent=self)
        self.store.notice.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.store.saveFailed.connect(lambda text: self.statusBar().showMessage(text))
        self.annotation_overlay = AnnotationOverlay(
            self.trace_view.plot_item, self.store, self._channel_bands, parent=self
        )
        self.annotation_dock = AnnotationDock(
            self.store, start=rec.start, channels=list(rec.ch_names), parent=self
        )
        self.annotation_dock.jumpRequested.connect(self._on_annotation_dock_jumpRequested)
        follow = self.annotation_dock.follow_check
        follow.setChecked(bool(self.settings.value("annotations/follow_page", True, bool)))
        follow.toggled.connect(lambda on: self.settings.setValue("annotations/follow_page", on))
        self.annotation_overlay.annotationActivated.connect(
            self._on_annotation_overlay_annotationActivated)
        self.annotation_overlay.tooMany.connect(self._on_annotation_overlay_tooMany)
        self.annotation_overlay.apply_theme(self.state.theme)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.annotation_dock)
        if not self.store.event_count():
            self.annotation_dock.hide()  # an empty list only takes room from the traces
        self._attach_undo(self.store.undo_stack)
        self._attach_hypnogram(rec)

    def _detach_overlay(self) -> None:
        # AnnotationOverlay has no detach(): remove the graphics items it put in the plot.
        plot = self.trace_view.plot_item
        own = set(self.trace_view.own_items())
        for item in list(plot.items):
            if item not in own:
                plot.removeItem(item)
        self.annotation_overlay.deleteLater()

    def _attach_hypnogram(self, rec: RecordingLike) -> None:
        try:
            from sleepviewer.widgets.hypnogram_view import HypnogramView
        except ImportError:
            return
        view = HypnogramView(self.store, start=rec.start)
        view.apply_theme(self.state.theme)
        view.jumpRequested.connect(self._on_hypnogram_view_jumpRequested)
        dock = QDockWidget("Hypnogram", self)
        dock.setObjectName("HypnogramDock")
        dock.setWidget(view)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.resizeDocks([dock], [190], Qt.Orientation.Vertical)
        self.hypnogram_view, self.hypnogram_dock = view, dock
        if self.spectrogram_enabled:
            view.start_spectrogram(rec)

    def _attach_undo(self, stack: Any) -> None:
        self.edit_menu.clear()
        undo = stack.createUndoAction(self.edit_menu, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = stack.createRedoAction(self.edit_menu, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        self.edit_menu.addAction(undo)
        self.edit_menu.addAction(redo)
        self.edit_menu.setEnabled(True)

    def _channel_bands(self) -> dict[str, tuple[float, float]]:
        vis = self.state.visible_channels
        n = len(vis)
        return {c.name: (float(n - i - 1), float(n - i)) for i, c in enumerate(vis)}

    # -- navigation and view ----------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw traces, overlays and the status bar for the current state."""
        if self.recording is None:
            return
        self.trace_view.refresh()
        if self.annotation_overlay is not None:
            self.annotation_overlay.update_view(self.state.start_s, self.state.stop_s)
        if self.annotation_dock is not None:
            self.annotation_dock.follow_page(self.state.start_s, self.state.stop_s)
        if self.hypnogram_view is not None and hasattr(self.hypnogram_view, "set_position"):
            self.hypnogram_view.set_position(self.state.start_s, self.state.stop_s)

    def go_to(self, start_s: float) -> None:
        """Show the page starting at ``start_s`` (clamped)."""
        self.state.go_to(start_s)
        self.refresh()

    def set_time_base(self, duration_s: float) -> None:
        """Change the page length; ``0`` shows the whole night."""
        total = self.state.recording_duration_s
        d = total if duration_s <= 0 and total > 0 else duration_s
        self.state.set_time_base(d if d > 0 else EPOCH_S)
        if duration_s > 0:
            self.settings.setValue("view/time_base", float(duration_s))
        self._check_time_base()
        self.refresh()

    def set_montage(self, name: str) -> None:
        """Switch to a montage preset (or "As recorded")."""
        self._apply_montage_rows(name)
        self.settings.setValue("view/montage", name)
        for act in self.montage_group.actions():
            act.setChecked(act.data() == name)
        self.trace_view.invalidate_overview()
        self.refresh()
        self._schedule_overview()

    def set_theme(self, name: str) -> None:
        """Switch between the light and dark theme."""
        self.state.theme = "dark" if name == "dark" else "light"
        self.settings.setValue("view/theme", self.state.theme)
        for act in self.theme_group.actions():
            act.setChecked(act.data() == self.state.theme)
        self._apply_theme()
        self.refresh()

    def set_filters_enabled(self, on: bool) -> None:
        """Switch all display filters on or off."""
        self.state.filters_enabled = bool(on)
        self.actions_by_name["toggle_filters"].setChecked(self.state.filters_enabled)
        self.refresh()

    def set_clip_traces(self, on: bool) -> None:
        """Draw traces within their rows (True) or let them run across the others."""
        self.state.clip_traces = bool(on)
        self.actions_by_name["toggle_clipping"].setChecked(self.state.clip_traces)
        self.refresh()

    def open_channel_dialog(self, focus: str | None = None) -> ChannelDialog:
        """Open the filters/derivations dialog (non-blocking) and return it."""
        sources = list(self.recording.ch_names) if self.recording is not None else []
        dlg = ChannelDialog(self.state.channels, sources, focus or None, self)
        dlg.accepted.connect(lambda: self._on_channel_dialog_accepted(dlg))
        dlg.open()
        return dlg

    def import_annotations(self, path: str | Path) -> bool:
        """Import a scoring file; a vendor export opens the label mapping first (True then)."""
        from sleepviewer.widgets.import_dialog import import_scoring

        return import_scoring(self, path) is not False

    def export_to(self, path: str | Path) -> bool:
        """Write a report (``.pdf``/``.html``) or the annotations (``.csv``/``.edf``/``.xml``).

        The annotations are the ones edited in this window (the annotation store).
        """
        rec = self.recording
        if rec is None:
            return False
        from sleepviewer.report.export import ANNOTATION_SUFFIXES, export_annotations, export_report

        edited = self.store.annotations() if self.store is not None else None
        try:
            if Path(path).suffix.lower() in ANNOTATION_SUFFIXES:
                out = export_annotations(path, edited if edited is not None else rec.annotations,
                                         rec.start)
            else:
                from sleepviewer.report.model import build_report_data

                out = export_report(path, build_report_data(rec, annotations=edited))
        except SleepLMError as exc:
            self._report_error(exc.one_line())
            return False
        self.statusBar().showMessage(f"Exported {out}", 8000)
        return True

    def save_screenshot(self, path: str | Path) -> bool:
        """Render the window (``grab()``) into a PNG; works offscreen."""
        QApplication.processEvents()
        return bool(self.grab().save(str(path)))

    # -- status bar -------------------------------------------------------------------------
    def _update_status(self) -> None:
        rec, st = self.recording, self.state
        if rec is None:
            return
        clock = format_clock(rec.start, st.start_s, 3)
        date = (rec.start + timedelta(seconds=st.start_s)).strftime("%Y-%m-%d")
        elapsed = _hms(st.start_s)
        page = _time_base_text(st.duration_s)
        self.clock_label.setText(f"{date} {clock}   elapsed {elapsed}   page {page}")
        self.epoch_label.setText(f"Epoch {st.epoch_index + 1}/{st.n_epochs}")
        info = self.trace_view.render_info
        if info.mode == "pyramid":
            self.decimation_label.setText(f"Decimation: {info.factor}x (peak, overview)")
        elif info.factor > 1:
            self.decimation_label.setText(f"Decimation: {info.factor}x (peak)")
        else:
            self.decimation_label.setText("Decimation: off")
        if info.mode == "pyramid":
            self.filter_label.setText("Filters: not in overview")
        else:
            self.filter_label.setText("Filters: on" if info.filtered else "Filters: off")

    # -- settings ---------------------------------------------------------------------------
    def _setting_theme(self) -> Any:
        return "dark" if self.settings.value("view/theme", "light") == "dark" else "light"

    def recent_files(self) -> list[str]:
        """Return the recent files, newest first."""
        value = self.settings.value("recent/files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember_recent(self, path: Path) -> None:
        p = str(path.resolve())
        files = [p] + [f for f in self.recent_files() if f != p]
        self.settings.setValue("recent/files", files[:MAX_RECENT])
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for f in files:
            self.recent_menu.addAction(Path(f).name, lambda f=f: self.open_file(f)).setToolTip(f)
        self.recent_menu.setEnabled(bool(files))

    def _check_time_base(self) -> None:
        d = self.state.duration_s
        whole = self.state.recording_duration_s > 0 and d >= self.state.recording_duration_s
        for value, act in self.time_base_actions.items():
            act.setChecked(value == 0.0 if whole and d not in TIME_BASES_S else value == d)

    def _apply_theme(self) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            theme.apply_palette(app, self.state.theme)
        self.trace_view.apply_theme()
        for view in (self.annotation_overlay, self.hypnogram_view):
            if view is not None:
                view.apply_theme(self.state.theme)

    # -- dialogs ----------------------------------------------------------------------------
    def _show_error_box(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, APPLICATION, message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # non-blocking: the window stays usable

    # -- events -----------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        """Accept dragged local files."""
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        """Open the first dropped file."""
        urls: list[QUrl] = event.mimeData().urls()
        local = [u.toLocalFile() for u in urls if u.isLocalFile()]
        if local:
            event.acceptProposedAction()
            self.open_file(local[0])

    def changeEvent(self, event: QEvent | None) -> None:  # noqa: N802
        """Save pending annotation edits (in the background) when the window loses focus."""
        if (
            event is not None
            and event.type() == QEvent.Type.ActivationChange
            and not self.isActiveWindow()
            and self.store is not None
            and not sip.isdeleted(self.store)  # a window being destroyed loses focus last
        ):
            self.store.save_soon()
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Save the geometry, flush annotations and close the file.

        When the annotations cannot be written anywhere, the user is asked before their
        edits are dropped (a failed write is never swallowed).
        """
        unsaved = self._flush_annotations()
        if unsaved is not None:
            answer = QMessageBox.question(
                self, APPLICATION, f"{unsaved}\n\nClose anyway and lose these edits?",
                QMessageBox.StandardButton.Close | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Close:
                event.ignore()
                return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.sync()
        self._close_recording()
        super().closeEvent(event)

    # -- slots ------------------------------------------------------------------------------
    def _on_trace_view_pageRendered(self) -> None:  # noqa: N802
        self._update_status()

    def _remember_layout(self) -> None:
        if self.recording is not None and self.state.montage == montage_views.AUTOMATIC:
            montage_views.remember_layout(self.recording, self.state.channels, self.settings)

    def _on_trace_view_channelsChanged(self) -> None:  # noqa: N802
        self._remember_layout()
        if self.annotation_overlay is not None:
            self.annotation_overlay.refresh()

    def _on_hypnogram_view_jumpRequested(self, t_s: float) -> None:  # noqa: N802
        self.go_to(t_s // EPOCH_S * EPOCH_S)

    def _on_annotation_dock_jumpRequested(self, onset_s: float) -> None:  # noqa: N802
        self.go_to(onset_s // EPOCH_S * EPOCH_S)

    def _on_annotation_overlay_annotationActivated(self, ann: Any) -> None:  # noqa: N802
        self.annotation_dock.edit_with_dialog(ann)  # a double-click on the plot

    def _on_annotation_overlay_tooMany(self, n: int) -> None:  # noqa: N802
        self.statusBar().showMessage(f"{n} events on this page: zoom in to see them", 5000)

    def _on_time_base_group_triggered(self, act: QAction) -> None:
        self.set_time_base(float(act.data()))

    def _on_channel_dialog_accepted(self, dlg: ChannelDialog) -> None:
        new = dlg.new_derivations()
        if new:
            self.user_derivations.extend(new)
            settings = {c.name: c for c in dlg.result_channels()}
            self._apply_montage_rows(self.state.montage)
            self.state.channels = [settings.get(c.name, c) for c in self.state.channels]
            self.trace_view.invalidate_overview()
        else:
            self.state.channels = dlg.result_channels()
        self._remember_layout()
        self.refresh()


def _time_base_text(duration_s: float) -> str:
    if duration_s < 60:
        return f"{duration_s:g} s"
    if duration_s < 3600:
        return f"{duration_s / 60:g} min"
    return f"{duration_s / 3600:g} h"


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
