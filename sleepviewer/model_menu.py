"""ModelMenuController: the "Model" menu (fine-tune, and which checkpoint is in use).

Attached in :func:`sleepviewer.app.main` next to the language controller::

    window.model_menu = ModelMenuController(window, language=window.language)

The menu lists :func:`sleepviewer.model_registry.list_models` (bundled first, then the user's
fine-tuned models) as checkable actions; choosing one is remembered in the window's QSettings
(``model/active``) and restarts the language controller's predictor through its
:class:`~sleepviewer.workers.WorkerHost` (the open night is embedded again). "Fine-tune on
these recordings…" opens :class:`~sleepviewer.widgets.finetune_dialog.FineTuneDialog`, whose
job runs in a second worker thread owned here, so the language features stay responsive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from PyQt6.QtCore import QEvent, QObject, QSettings
from PyQt6.QtGui import QAction, QActionGroup
from PyQt6.QtWidgets import QMainWindow, QMenu

from sleepviewer.model_registry import (
    BUNDLED_KEY,
    ModelEntry,
    bundled_models_dir,
    default_models_dir,
    find_entry,
    list_models,
)
from sleepviewer.widgets.finetune_dialog import FineTuneDialog, RecordingSummary
from sleepviewer.workers import WorkerHost

SETTINGS_KEY: Final[str] = "model/active"
MODEL_KINDS: Final[tuple[str, ...]] = ("embed", "search", "caption", "prompt", "stage")
"""Requests whose answers depend on the model in use (stopped on a switch)."""


def user_models_dir() -> Path:
    """The models folder shared with ``sleeplm models`` (``$SLEEPLM_MODELS_DIR`` or the default).

    Fine-tunes are written there and imported SleepLM-Base models are found there.
    """
    return default_models_dir()


def _no_predictor() -> Any:
    raise RuntimeError("the fine-tune worker does not load a predictor")


class ModelMenuController(QObject):
    """Builds the Model menu of ``window`` and runs fine-tunes.

    Parameters
    ----------
    window : QMainWindow
        Needs ``menuBar()``, ``settings`` (QSettings), ``recording`` (``.path``,
        ``.duration_s``) and ``store`` (``annotations()``) like the main window.
    language : LanguageController or None
        Its ``host`` gets :meth:`WorkerHost.set_model` on a switch.
    models_dir, bundled_dir : str or Path or None
        The user's models folder (default :func:`user_models_dir`) and the shipped checkpoint
        folder (default :func:`~sleepviewer.model_registry.bundled_models_dir`).
    host_factory : callable or None
        ``() -> WorkerHost`` for the fine-tune thread (tests may share one).
    """

    def __init__(
        self,
        window: QMainWindow,
        language: Any = None,
        *,
        models_dir: str | Path | None = None,
        bundled_dir: str | Path | None = None,
        settings: QSettings | None = None,
        host_factory: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.language = language
        self.models_dir = Path(models_dir) if models_dir is not None else user_models_dir()
        self.bundled_dir = Path(bundled_dir) if bundled_dir is not None else bundled_models_dir()
        self.settings = settings or getattr(window, "settings", None) or QSettings()
        self._host_factory = host_factory or (lambda: WorkerHost(_no_predictor, parent=self))
        self.host: Any = None
        self.dialog: FineTuneDialog | None = None
        self.entries: list[ModelEntry] = []
        self._closed = False
        self._build_menu()
        self.refresh()
        active = self.active_entry()
        if active is not None and not active.bundled:  # the language host starts on bundled
            self._apply(active)
        window.installEventFilter(self)

    # -- menu -------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        self.menu = QMenu("&Model", self.window)
        self.menu.setObjectName("ModelMenu")
        self.finetune_action = QAction("&Fine-tune on these recordings…", self.window)
        self.finetune_action.triggered.connect(self._on_finetune_action_triggered)
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        self.menu.aboutToShow.connect(self.refresh)
        bar = self.window.menuBar()
        if bar is None:
            return
        help_action = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"),
                           None)
        if help_action is not None:
            bar.insertMenu(help_action, self.menu)
        else:
            bar.addMenu(self.menu)

    def refresh(self) -> None:
        """Rebuild the list of models (cheap: reads the meta JSON files)."""
        self.entries = list_models(self.models_dir, self.bundled_dir)
        active = self.active_entry()
        self.menu.clear()
        for a in self.group.actions():
            self.group.removeAction(a)
        self.menu.addAction(self.finetune_action)
        self.menu.addSeparator()
        if not self.entries:
            none = self.menu.addAction("No model installed")
            if none is not None:
                none.setEnabled(False)
        for e in self.entries:
            act = QAction(e.name, self.menu)
            act.setCheckable(True)
            act.setChecked(active is not None and e.key == active.key)
            act.setToolTip(e.describe())
            act.setStatusTip(e.describe())
            act.setData(e.key)
            act.triggered.connect(lambda _on, key=e.key: self.select(key))
            self.group.addAction(act)
            self.menu.addAction(act)
        self.menu.setToolTipsVisible(True)

    def model_actions(self) -> list[QAction]:
        """The checkable model actions, in menu order."""
        return list(self.group.actions())

    # -- the model in use -------------------------------------------------------------------
    def active_entry(self) -> ModelEntry | None:
        """The remembered model if it still exists, else the first (bundled) one."""
        key = str(self.settings.value(SETTINGS_KEY, BUNDLED_KEY) or BUNDLED_KEY)
        entry = find_entry(self.entries, key)
        return entry or (self.entries[0] if self.entries else None)

    def select(self, key: str) -> bool:
        """Use the model stored as ``key`` (a folder path or ``"bundled"``)."""
        self.refresh()
        entry = find_entry(self.entries, key)
        if entry is None:
            self._status(f"No such model: {key}")
            return False
        self.settings.setValue(SETTINGS_KEY, entry.key)
        self.refresh()
        self._apply(entry)
        self._status(f"Model in use: {entry.name} ({entry.describe()})")
        return True

    def select_path(self, path: str) -> bool:
        """Use the checkpoint folder ``path`` (what the dialog's "Use this model" sends)."""
        return self.select(str(Path(path)))

    def _apply(self, entry: ModelEntry) -> None:
        host = getattr(self.language, "host", None)
        if host is None or getattr(host, "closed", False):
            return
        for kind in MODEL_KINDS:  # the scored captions need no model: they go on
            host.cancel(kind)
        host.set_model(entry.path)
        if hasattr(self.language, "model_changed"):
            self.language.model_changed()
        rec = getattr(self.window, "recording", None)
        path = getattr(rec, "path", None)
        if path is not None:
            host.embed_night(path)  # the old embedding belongs to the old model

    def _status(self, text: str) -> None:
        bar = self.window.statusBar()
        if bar is not None:
            bar.showMessage(text, 6000)

    # -- fine-tuning ------------------------------------------------------------------------
    def base_path(self) -> Path | None:
        """The checkpoint a fine-tune starts from: the model in use."""
        entry = self.active_entry()
        return entry.path if entry is not None else None

    def current_summary(self) -> RecordingSummary | None:
        """The open recording with the viewer's (possibly unsaved) scoring."""
        rec = getattr(self.window, "recording", None)
        path = getattr(rec, "path", None)
        if rec is None or path is None:
            return None
        store = getattr(self.window, "store", None)
        anns = list(store.annotations()) if store is not None else list(rec.annotations)
        return RecordingSummary.from_annotations(path, anns, float(rec.duration_s))

    def open_dialog(self) -> FineTuneDialog:
        """Show the fine-tune dialog (one at a time)."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.raise_()
            return self.dialog
        if self.host is None:
            self.host = self._host_factory()
        self.dialog = FineTuneDialog(self.host, self.base_path(), self.models_dir,
                                     self.current_summary(), self.window)
        self.dialog.useModelRequested.connect(self.select_path)
        self.dialog.finetuned.connect(lambda _p: self.refresh())
        self.dialog.show()
        return self.dialog

    def _on_finetune_action_triggered(self) -> None:
        self.open_dialog()

    def close(self) -> None:
        """Stop a running fine-tune and its thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self.dialog is not None:
            with contextlib.suppress(RuntimeError):
                self.dialog.close()
        if self.host is not None:
            self.host.close()
        with contextlib.suppress(RuntimeError):
            self.window.removeEventFilter(self)

    def eventFilter(self, obj: QObject | None, event: QEvent | None) -> bool:  # noqa: N802
        """Close the fine-tune worker when the window closes."""
        if obj is self.window and event is not None and event.type() == QEvent.Type.Close:
            self.close()
        return False


__all__ = ["SETTINGS_KEY", "ModelMenuController", "user_models_dir"]
