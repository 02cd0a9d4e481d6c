"""The window's menu and key actions: an action named ``x`` runs ``_on_action_x`` here.

:class:`WindowActions` is a mixin of :class:`~sleepviewer.widgets.main_window.MainWindow`
(which builds the actions from the key table, :mod:`sleepviewer.keys`): file dialogs,
paging, time base, gain, filters, trace clipping, theme, screen calibration, shortcuts, about
and scoring.
Each slot changes the window's :class:`~sleepviewer.state.ViewState` through the window's
own methods and asks for a redraw.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from sleepviewer import keys
from sleepviewer.state import TIME_BASES_S, parse_go_to

APPLICATION = "SleepLM Viewer"
EDF_FILTER = "Recordings (*.edf *.EDF *.bdf *.BDF *.rec);;All files (*)"
EXPORT_FILTER = "Report (*.pdf *.html);;Annotations (*.csv *.edf *.xml)"
ANNOTATION_FILTER = "Annotations (*.xml *.csv *.txt *.edf *.tsv);;All files (*)"


class WindowActions:
    """Slots of the window's actions, mixed into ``MainWindow`` (a ``QMainWindow``).

    They use the window's ``state``, ``recording``, ``settings``, ``store``, ``trace_view``,
    ``actions_by_name`` and its methods (``refresh``, ``go_to``, ``set_time_base``, ...).
    """

    def _on_go_to_text(self, text: str) -> None:
        start = self.recording.start if self.recording is not None else None
        try:
            self.go_to(parse_go_to(text, start, self.state))
        except ValueError as exc:
            self.statusBar().showMessage(f"Go to: {exc}", 5000)

    def _on_action_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open recording", "", EDF_FILTER)
        if path:
            self.open_file(path)

    def _on_action_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export", "", EXPORT_FILTER)
        if path:
            self.export_to(path)

    def _on_action_import_annotations(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import annotations", "", ANNOTATION_FILTER)
        if path:
            self.import_annotations(path)

    def _on_action_import_channel_scoring(self) -> None:
        from sleepviewer.widgets.import_dialog import import_channel_scoring

        import_channel_scoring(self)

    def _on_action_quit(self) -> None:
        self.close()

    def _on_action_next_epoch(self) -> None:
        self.state.step_epochs(1)
        self.refresh()

    def _on_action_prev_epoch(self) -> None:
        self.state.step_epochs(-1)
        self.refresh()

    def _on_action_next_page(self) -> None:
        self.state.step_pages(1)
        self.refresh()

    def _on_action_prev_page(self) -> None:
        self.state.step_pages(-1)
        self.refresh()

    def _on_action_first_page(self) -> None:
        self.go_to(0.0)

    def _on_action_last_page(self) -> None:
        self.go_to(self.state.recording_duration_s)

    def _on_action_go_to(self) -> QInputDialog:
        dlg = QInputDialog(self)
        dlg.setWindowTitle("Go to")
        dlg.setLabelText(
            "Epoch number, clock time (23:41:05), elapsed (+1:30:00) or seconds (5400s)"
        )
        dlg.textValueSelected.connect(self._on_go_to_text)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.open()
        return dlg

    def _on_action_longer_time_base(self) -> None:
        longer = [d for d in TIME_BASES_S if d > self.state.duration_s + 1e-9]
        self.set_time_base(longer[0] if longer else 0.0)

    def _on_action_shorter_time_base(self) -> None:
        shorter = [d for d in TIME_BASES_S if d < self.state.duration_s - 1e-9]
        if shorter:
            self.set_time_base(shorter[-1])

    def _on_action_gain_up(self) -> None:
        self.trace_view.scale_gain(1.25)

    def _on_action_gain_down(self) -> None:
        self.trace_view.scale_gain(0.8)

    def _on_action_toggle_filters(self) -> None:
        self.set_filters_enabled(self.actions_by_name["toggle_filters"].isChecked())

    def _on_action_toggle_clipping(self) -> None:
        self.set_clip_traces(self.actions_by_name["toggle_clipping"].isChecked())

    def _on_action_channel_settings(self) -> None:
        self.open_channel_dialog()

    def _on_action_toggle_theme(self) -> None:
        self.set_theme("light" if self.state.theme == "dark" else "dark")

    def _on_action_calibrate_screen(self) -> QInputDialog:
        dlg = QInputDialog(self)
        dlg.setWindowTitle("Screen calibration")
        dlg.setLabelText(
            "Pixels per millimetre on this screen (measure a 100-px line; 0 = use the screen's DPI)"
        )
        dlg.setInputMode(QInputDialog.InputMode.DoubleInput)
        dlg.setDoubleRange(0.0, 100.0)
        dlg.setDoubleDecimals(3)
        dlg.setDoubleValue(self.trace_view.screen_px_per_mm())
        dlg.doubleValueSelected.connect(self.set_screen_calibration)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.open()
        return dlg

    def set_screen_calibration(self, px_per_mm: float) -> None:
        """Set (``> 0``) or clear (``0``) the pixels-per-mm calibration behind µV/mm."""
        self.state.px_per_mm = float(px_per_mm) if px_per_mm > 0 else None
        self.settings.setValue("view/px_per_mm", float(max(px_per_mm, 0.0)))
        self.refresh()

    def _on_action_shortcuts(self) -> QMessageBox:
        box = QMessageBox(
            QMessageBox.Icon.NoIcon,
            "Shortcuts",
            keys.shortcut_sheet_html(),
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def _on_action_about(self) -> None:
        from sleepviewer import __version__

        box = QMessageBox(
            QMessageBox.Icon.Information,
            f"About {APPLICATION}",
            f"{APPLICATION} {__version__}\nA PSG workstation with a sleep-language "
            "model inside it.",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _on_action_score(self, action: str) -> None:
        from sleepviewer.scoring import SCORING_ACTIONS

        stage = next((a.stage for a in SCORING_ACTIONS if a.name == action), None)
        if stage is None or self.store is None:
            return
        nxt = self.store.score(self.state.epoch_index, stage)
        self.state.go_to_epoch(nxt)
        self.refresh()
