"""LanguageController: the search bar, results and captions docks wired into a main window.

The main window does not know about the model. It only needs what it already has::

    mw.trace_view.pageRendered        # a signal after every redraw (navigation, open)
    mw.recording                      # .path, .start, .duration_s (None when closed)
    mw.state.start_s                  # the page start, seconds
    mw.go_to(start_s)                 # navigation
    mw.store                          # AnnotationStore: add(), events(), stage_codes,
                                      #   eventsChanged, stagesChanged (None when closed)
    mw.addDockWidget / menuBar / statusBar

and one line in ``MainWindow.__init__`` (or in ``app.main``)::

    self.language = LanguageController(self)

The controller starts a :class:`~sleepviewer.workers.WorkerHost`, embeds each recording the
window opens, sends searches, captions and questions to it, and applies only the latest
answers. It closes the worker when the window closes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Final

import pyqtgraph as pg
from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QDockWidget, QMainWindow, QVBoxLayout

from sleeplm_core.io.annotations import Annotation
from sleeplm_core.io.labels import EVENT_LABELS, normalize_label
from sleeplm_core.results import Segment
from sleeplm_core.stages import EPOCH_S, INT_TO_STAGE
from sleepviewer.query import ParsedQuery
from sleepviewer.widgets.caption_panel import CaptionPanel
from sleepviewer.widgets.query_bar import QueryBar
from sleepviewer.widgets.results_dock import ResultsDock
from sleepviewer.widgets.suggestion_view import SuggestionView
from sleepviewer.workers import (
    CaptionResponse,
    EmbedNightResponse,
    Failure,
    ReferenceCaptionsResponse,
    SearchResponse,
    StageResponse,
    WorkerHost,
    weak_slot,
)

REFERENCE_DEBOUNCE_MS: Final[int] = 1500
"""Scored captions are rewritten this long after the last scoring or annotation edit."""
MATCH_BRUSH: Final[str] = "#f5b94240"
MATCH_PEN: Final[str] = "#d98c00"

SHORTCUTS: Final[dict[str, tuple[str, str]]] = {
    "focus_search": ("Ctrl+L", "Search the night in words"),
    "next_match": ("F3", "Next search match"),
    "previous_match": ("Shift+F3", "Previous search match"),
    "ask": ("Ctrl+Shift+L", "Ask SleepLM about this epoch"),
    "suggest_stages": ("Ctrl+Shift+H", "Suggest stages with SleepLM (zero-shot)"),
    "cancel_model": ("Ctrl+.", "Cancel the model's work"),
}
"""Window shortcuts of the language features. A row of ``keys.KEY_TABLE`` with the same
action name (so ``MainWindow.actions_by_name`` has it) is used instead of binding the key
here, so the shortcut sheet can list them without two actions fighting over one key."""


def segment_to_annotation(segment: Segment, query: str) -> Annotation:
    """The event a user accepts from a search match.

    A query naming a known event ("obstructive apnea") gives that label; any other query
    becomes the label ``"SleepLM: <query>"``. The score and query are kept as extras.
    """
    label = normalize_label(query)
    if label not in EVENT_LABELS:
        label = f"SleepLM: {query.strip()}"
    extras = (("source", "SleepLM search"), ("query", query.strip()),
              ("score", f"{segment.score:.2f}"))
    return Annotation(float(segment.onset_s), float(segment.duration_s), label, None, extras)


class LanguageController(QObject):
    """Builds the language docks in ``window`` and connects them to the model worker.

    Parameters
    ----------
    window : QMainWindow
        The main window (see the module docstring for what it must have).
    predictor_factory, opener : callable or None
        Passed to :class:`~sleepviewer.workers.WorkerHost` (tests pass fakes).
    """

    def __init__(
        self,
        window: QMainWindow,
        predictor_factory: Callable[[], Any] | None = None,
        opener: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.host = WorkerHost(predictor_factory, opener, self)
        self._rec: Any = None
        self._store: Any = None
        self._query: ParsedQuery | None = None
        self._model_error = ""
        self._highlight: Any = None
        self._highlight_plot: Any = None
        self._marks: list[Any] = []  # (plot, line) of the matches on the hypnogram
        self._closed = False
        self._reference_timer = QTimer(self)
        self._reference_timer.setSingleShot(True)
        self._reference_timer.setInterval(REFERENCE_DEBOUNCE_MS)
        self._reference_timer.timeout.connect(self._on_reference_timer_timeout)
        self._build_docks()
        self._build_actions()
        self._connect()
        window.installEventFilter(self)
        if getattr(window, "recording", None) is not None:
            self._on_page_rendered()

    # -- construction -----------------------------------------------------------------------
    def _build_docks(self) -> None:
        w = self.window
        self.query_bar = QueryBar()
        self.results_dock = ResultsDock(None, w)
        self.results_dock.setWindowTitle("Search the night")
        body = self.results_dock.widget()
        lay = body.layout() if body is not None else None
        if isinstance(lay, QVBoxLayout):
            lay.insertWidget(0, self.query_bar)
        self.caption_panel = CaptionPanel()
        self.caption_dock = QDockWidget("Captions", w)
        self.caption_dock.setObjectName("CaptionDock")
        self.caption_dock.setWidget(self.caption_panel)
        self.suggestion_view = SuggestionView()
        self.suggestion_dock = QDockWidget("Stage suggestions (SleepLM)", w)
        self.suggestion_dock.setObjectName("SuggestionDock")
        self.suggestion_dock.setWidget(self.suggestion_view)
        w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.results_dock)
        w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.caption_dock)
        w.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.suggestion_dock)
        self.suggestion_dock.hide()
        w.resizeDocks([self.caption_dock, self.results_dock], [380, 460],
                      Qt.Orientation.Horizontal)

    def _build_actions(self) -> None:
        self.actions: dict[str, QAction] = {}
        menu = self.window.menuBar().addMenu("&Language")
        slots = {
            "focus_search": self.focus_search,
            "next_match": self.results_dock.next_result,
            "previous_match": self.results_dock.previous_result,
            "ask": self.focus_prompt,
            "suggest_stages": self.suggest_stages,
            "cancel_model": self.cancel,
        }
        existing: dict[str, QAction] = getattr(self.window, "actions_by_name", {}) or {}
        for name, (key, text) in SHORTCUTS.items():
            act = existing.get(name)
            if act is None:  # not in keys.KEY_TABLE (yet): bind the key here
                act = QAction(text, self.window)
                act.setShortcut(QKeySequence(key))
                act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
                self.window.addAction(act)
            slot = weak_slot(slots[name])
            act.triggered.connect(lambda _checked=False, slot=slot: slot())
            menu.addAction(act)
            self.actions[name] = act
        menu.addSeparator()
        menu.addAction(self.results_dock.toggleViewAction())
        menu.addAction(self.caption_dock.toggleViewAction())
        menu.addAction(self.suggestion_dock.toggleViewAction())
        self.menu = menu

    def _connect(self) -> None:
        h = self.host
        h.progress.connect(weak_slot(self._on_host_progress))
        h.finished.connect(weak_slot(self._on_host_finished))
        h.requestFailed.connect(weak_slot(self._on_host_requestFailed))
        h.cancelled.connect(weak_slot(self._on_host_cancelled))
        self.query_bar.searchRequested.connect(weak_slot(self._on_query_bar_searchRequested))
        self.query_bar.cancelRequested.connect(weak_slot(self._on_query_bar_cancelRequested))
        self.results_dock.jumpRequested.connect(weak_slot(self._on_jump))
        self.results_dock.currentChanged.connect(weak_slot(self._on_results_currentChanged))
        self.results_dock.acceptRequested.connect(weak_slot(self._on_results_acceptRequested))
        self.caption_panel.evidenceRequested.connect(weak_slot(self._on_jump))
        self.caption_panel.promptSubmitted.connect(weak_slot(self._on_panel_promptSubmitted))
        self.caption_panel.captionsWanted.connect(weak_slot(self._on_panel_captionsWanted))
        self.suggestion_view.jumpRequested.connect(weak_slot(self._on_jump))
        self.suggestion_view.acceptRequested.connect(
            weak_slot(self._on_suggestion_acceptRequested))
        self._stages_slot = weak_slot(self._on_store_stagesChanged)
        self._page_slot = weak_slot(self._on_page_rendered)
        self.window.trace_view.pageRendered.connect(self._page_slot)

    # -- public -----------------------------------------------------------------------------
    def focus_search(self) -> None:
        """Show the search dock and put the cursor in the search line."""
        self.results_dock.show()
        self.results_dock.raise_()
        self.query_bar.edit.setFocus()
        self.query_bar.edit.selectAll()

    def focus_prompt(self) -> None:
        """Show the captions dock and put the cursor in the prompt field."""
        self.caption_dock.show()
        self.caption_dock.raise_()
        self.caption_panel.prompt_edit.setFocus()

    def suggest_stages(self) -> None:
        """Ask the model for its zero-shot hypnogram and show it beside the scoring."""
        hyp = getattr(self.window, "hypnogram_dock", None)
        if isinstance(hyp, QDockWidget) and not self.suggestion_dock.isVisible():
            self.window.splitDockWidget(hyp, self.suggestion_dock, Qt.Orientation.Vertical)
        self.suggestion_dock.show()
        self.suggestion_dock.raise_()
        self.suggestion_view.set_scored(self._stages(all_epochs=True) or [])
        if self._rec is None:
            return
        if self._model_error:
            self.suggestion_view.summary_label.setText(f"SleepLM unavailable: {self._model_error}")
            return
        self.suggestion_view.summary_label.setText("SleepLM is staging the night…")
        self.host.stage()

    def cancel(self) -> None:
        """Stop what the model is doing (the night's embedding included)."""
        self.host.cancel()
        self.window.statusBar().showMessage("Model work cancelled", 4000)

    def close(self) -> None:
        """Stop the worker and disconnect everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._reference_timer.stop()
        self._watch_store(None)
        self.window.removeEventFilter(self)
        with contextlib.suppress(TypeError, RuntimeError):
            self.window.trace_view.pageRendered.disconnect(self._page_slot)
        self._remove_highlight()
        self._remove_match_marks()
        self.host.close()

    # -- recording lifecycle ----------------------------------------------------------------
    def _on_page_rendered(self) -> None:
        rec = getattr(self.window, "recording", None)
        if rec is not self._rec:
            self._on_recording_changed(rec)
        elif getattr(self.window, "store", None) is not self._store:  # attached after the page
            self._watch_store(getattr(self.window, "store", None))
            self.suggestion_view.set_scored(self._stages(all_epochs=True) or [])
        if rec is not None:
            self.caption_panel.set_position(float(self.window.state.start_s))
            self.suggestion_view.set_position(float(self.window.state.start_s))
            if self._highlight is not None and self._highlight.scene() is None:
                self._highlight = None  # the window cleared its plot's overlays

    def model_changed(self) -> None:
        """Forget a previous model's failure and results after the model in use was switched."""
        self._model_error = ""
        self._query = None
        self._remove_highlight()
        self._marks = []
        self.results_dock.clear()
        self.suggestion_view.set_suggestions(None)
        self.query_bar.set_state("not_ready", "embedding the night with the new model…")

    def _on_recording_changed(self, rec: Any) -> None:
        self._rec = rec
        self.host.cancel()
        self._query = None
        self._model_error = ""
        self._remove_highlight()
        self._marks = []  # they went with the previous recording's hypnogram
        start = getattr(rec, "start", None)
        self.results_dock.set_start(start)
        self.results_dock.clear()
        self.suggestion_view.set_suggestions(None)
        self._watch_store(getattr(self.window, "store", None))
        self.suggestion_view.set_scored(self._stages(all_epochs=True) or [])
        if rec is None:
            self.caption_panel.set_recording(None, 0.0)
            self.query_bar.set_state("no_recording")
            return
        self.caption_panel.set_recording(start, float(rec.duration_s))
        path = getattr(rec, "path", None)
        if path is None:
            self._model_unavailable("this recording has no file the model could read")
            self.caption_panel.set_reference_note("no file to read the signals from")
            return
        self.query_bar.set_state("not_ready")
        self._request_reference()  # no model needed, and quicker than the embedding
        self.host.embed_night(path)

    def _watch_store(self, store: Any) -> None:
        if self._store is not None:
            for sig in ("eventsChanged", "stagesChanged"):
                with contextlib.suppress(TypeError, RuntimeError, AttributeError):
                    getattr(self._store, sig).disconnect(self._reference_timer.start)
            with contextlib.suppress(TypeError, RuntimeError, AttributeError):
                self._store.stagesChanged.disconnect(self._stages_slot)
        self._store = store
        if store is not None:
            store.eventsChanged.connect(self._reference_timer.start)
            store.stagesChanged.connect(self._reference_timer.start)
            store.stagesChanged.connect(self._stages_slot)

    def _stages(self, all_epochs: bool = False) -> list[str] | None:
        """The store's stage per epoch; ``None`` when nothing is scored (unless all_epochs)."""
        store = self._store
        if store is None:
            return None
        codes = getattr(store, "stage_codes", None)
        if codes is None:
            return None
        stages = [INT_TO_STAGE[int(c)] for c in codes]
        if all_epochs:
            return stages
        return stages if any(s not in ("UNS", "ART") for s in stages) else None

    def _request_reference(self) -> None:
        if self._rec is None or getattr(self._rec, "path", None) is None:
            return
        events = list(self._store.events()) if self._store is not None else list(
            getattr(self._rec, "annotations", ()))
        events = [a for a in events if not getattr(a, "is_stage", False)]
        self.host.reference_captions(events, self._stages(), self._rec.path)

    def _model_unavailable(self, message: str) -> None:
        self._model_error = message
        self.query_bar.set_state("unavailable", message)
        self.results_dock.clear("Searching needs the SleepLM model (see above). The scored "
                                "captions in the Captions dock work without it.")
        self.caption_panel.set_model_note(f"SleepLM unavailable: {message}")

    # -- highlight ------------------------------------------------------------------------
    def _show_highlight(self, seg: Segment | None) -> None:
        plot = getattr(getattr(self.window, "trace_view", None), "plot_item", None)
        if plot is None:
            return
        if seg is None:
            self._remove_highlight()
            return
        if self._highlight is None:
            self._highlight = pg.LinearRegionItem(
                (seg.onset_s, seg.onset_s + seg.duration_s), movable=False,
                brush=pg.mkBrush(MATCH_BRUSH), pen=pg.mkPen(MATCH_PEN, width=1),
            )
            self._highlight.setZValue(-5)
            plot.addItem(self._highlight, ignoreBounds=True)
            self._highlight_plot = plot
        else:
            self._highlight.setRegion((seg.onset_s, seg.onset_s + seg.duration_s))

    def _show_match_marks(self, segments: list[Segment]) -> None:
        """Mark every match on the hypnogram (amber lines), replacing the previous marks."""
        self._remove_match_marks()
        plot = getattr(getattr(self.window, "hypnogram_view", None), "hypno_plot", None)
        if plot is None:
            return
        pen = pg.mkPen(MATCH_PEN, width=2)
        for seg in segments:
            line = pg.InfiniteLine(pos=seg.onset_s + seg.duration_s / 2, angle=90, pen=pen)
            line.setZValue(40)
            line.setToolTip(f"Search match, score {seg.score:.2f}")
            plot.addItem(line, ignoreBounds=True)
            self._marks.append((plot, line))

    def _remove_match_marks(self) -> None:
        marks, self._marks = self._marks, []
        for plot, line in marks:
            with contextlib.suppress(RuntimeError):  # the hypnogram may be gone already
                if line.scene() is not None:
                    plot.removeItem(line)

    def _remove_highlight(self) -> None:
        item, self._highlight = self._highlight, None
        plot, self._highlight_plot = self._highlight_plot, None
        if item is None or plot is None:
            return
        if item.scene() is not None and item in getattr(plot, "items", [item]):
            with contextlib.suppress(RuntimeError):
                plot.removeItem(item)

    # -- slots ------------------------------------------------------------------------------
    def _on_host_progress(self, percent: int, text: str) -> None:
        self.query_bar.set_progress(text)
        self.window.statusBar().showMessage(text, 4000)

    def _on_host_finished(self, response: Any) -> None:
        if isinstance(response, EmbedNightResponse):
            n = len(response.embeddings.onsets_s)
            searching = self.query_bar.state == "searching"
            if not searching:
                self.query_bar.set_state(
                    "ready", f"Ready: {n} windows of the night embedded "
                             f"({response.embeddings.model}).")
            if response.note:
                self.window.statusBar().showMessage(response.note, 8000)
        elif isinstance(response, SearchResponse):
            self._query = response.query
            self.results_dock.set_result(
                response.result, n_found=response.n_found,
                filters=response.query.filters.describe(),
            )
            n = len(response.result.segments)
            self._show_match_marks(response.result.segments)
            hint = "F3 walks the matches, A accepts one." if n else "Try other words."
            self.query_bar.set_state("ready", f"Search done. {hint}")
            self.results_dock.show()
            self.results_dock.raise_()
        elif isinstance(response, CaptionResponse):
            if response.prompt:
                self.caption_panel.set_answer(response.prompt, response.captions)
            else:
                self.caption_panel.set_generated(response.captions)
        elif isinstance(response, StageResponse):
            self.suggestion_view.set_scored(self._stages(all_epochs=True) or [])
            self.suggestion_view.set_suggestions(response.result)
        elif isinstance(response, ReferenceCaptionsResponse):
            self.caption_panel.set_reference(response.captions, response.annotations,
                                             self._stages())

    def _on_host_requestFailed(self, failure: Failure) -> None:  # noqa: N802
        msg = failure.message
        if failure.kind == "embed":
            self._model_unavailable(msg)
        elif failure.kind == "search":
            if self._model_error:
                self.query_bar.set_state("unavailable", self._model_error)
            else:
                self.query_bar.set_state("ready" if self.host.embedding_ready else "not_ready")
                self.query_bar.show_message(f"The search failed: {msg}", error=True)
            self.results_dock.show_failure(msg)
        elif failure.kind == "prompt":
            prompt = self.caption_panel.answer[0] if self.caption_panel.answer else ""
            self.caption_panel.set_answer_failed(prompt, msg)
        elif failure.kind == "caption" and not self._model_error:
            self.caption_panel.set_model_note(f"SleepLM could not caption this epoch: {msg}")
        elif failure.kind == "stage":
            self.suggestion_view.summary_label.setText(f"SleepLM could not stage: {msg}")
        elif failure.kind == "reference":
            self.caption_panel.set_reference_note(f"scored captions failed: {msg}")
        self.window.statusBar().showMessage(msg, 8000)

    def _on_host_cancelled(self, _request_id: int) -> None:
        if self.host.embedding_pending or self._rec is None or self._model_error:
            return
        if self.host.embedding_ready:
            if self.query_bar.state == "searching":
                self.query_bar.set_state("ready")
                self.query_bar.show_message("Search cancelled.")
        else:
            self.query_bar.set_state("not_ready")
            self.query_bar.show_message("The night's embedding was stopped: a search restarts it.")

    def _on_query_bar_searchRequested(self, parsed: ParsedQuery) -> None:  # noqa: N802
        rec = self._rec
        if rec is None:
            return
        if not self.host.embedding_ready and not self.host.embedding_pending and rec.path:
            self.host.embed_night(rec.path)  # restart an embedding that was cancelled
        self.host.search(parsed, stages=self._stages(), start=getattr(rec, "start", None),
                         duration_s=float(rec.duration_s))

    def _on_query_bar_cancelRequested(self) -> None:  # noqa: N802
        self.host.cancel("search")
        ready = self.host.embedding_ready
        self.query_bar.set_state("ready" if ready else "not_ready")
        self.query_bar.show_message("Search cancelled.")

    def _on_jump(self, onset_s: float) -> None:
        self.window.go_to(onset_s // EPOCH_S * EPOCH_S)

    def _on_results_currentChanged(self, seg: Segment | None) -> None:  # noqa: N802
        self.caption_panel.set_match(seg)
        self._show_highlight(seg)

    def _on_results_acceptRequested(self, seg: Segment) -> None:  # noqa: N802
        store = self._store
        if store is None:
            self.window.statusBar().showMessage("No annotation store: cannot accept", 5000)
            return
        text = self._query.text if self._query is not None else "match"
        ann = segment_to_annotation(seg, text)
        store.add(ann)  # one undoable step in the store's undo stack
        self.window.statusBar().showMessage(f"Added “{ann.label}” (Ctrl+Z undoes it)", 5000)

    def _on_suggestion_acceptRequested(self, by_stage: dict[str, list[int]]) -> None:  # noqa: N802
        store = self._store
        if store is None:
            return
        n = sum(len(v) for v in by_stage.values())
        stack = store.undo_stack
        stack.beginMacro(f"Accept {n} SleepLM stage suggestion{'s' if n != 1 else ''}")
        try:
            for stage, epochs in by_stage.items():
                store.set_stage(epochs, stage)
        finally:
            stack.endMacro()
        self.window.statusBar().showMessage(
            f"Scored {n} epoch{'s' if n != 1 else ''} as SleepLM suggested (Ctrl+Z undoes it)",
            5000)
        refresh = getattr(self.window, "refresh", None)
        if callable(refresh):
            refresh()

    def _on_store_stagesChanged(self, *_args: Any) -> None:  # noqa: N802
        self.suggestion_view.set_scored(self._stages(all_epochs=True) or [])

    def _on_panel_promptSubmitted(self, prompt: str) -> None:  # noqa: N802
        epoch = self.caption_panel.epoch or 0
        if self._model_error:
            self.caption_panel.set_answer_failed(prompt, self._model_error)
            return
        self.host.caption(epoch * EPOCH_S, (epoch + 1) * EPOCH_S, prompt)

    def _on_panel_captionsWanted(self, start_s: float, stop_s: float) -> None:  # noqa: N802
        if self._rec is not None and not self._model_error and not self.host.closed:
            self.host.caption(start_s, stop_s)

    def _on_reference_timer_timeout(self) -> None:
        if not self._closed:
            self._request_reference()

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        """Close the worker when the window closes."""
        if obj is self.window and event is not None and event.type() == QEvent.Type.Close:
            self.close()
        return False


__all__ = ["SHORTCUTS", "LanguageController", "segment_to_annotation"]
