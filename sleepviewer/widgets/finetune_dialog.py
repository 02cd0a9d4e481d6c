"""FineTuneDialog: fine-tune SleepLM on the user's scored recordings.

The dialog picks the recordings (the open one, with the viewer's scoring, is preselected;
more EDFs can be added and are read with their sidecars), the mode (full fine-tune or a
few-shot stage head with K epochs per stage) and the number of steps. Before anything starts,
a pre-check says what is missing (:func:`precheck`). The work runs in a
:class:`~sleepviewer.workers.WorkerHost` thread; the dialog shows step, loss and an ETA, can
cancel, and at the end says where the new checkpoint went and offers "Use this model"::

    dlg = FineTuneDialog(host, base="…/models", models_dir=user_models,
                         current=RecordingSummary.from_annotations(path, anns, duration_s))
    dlg.useModelRequested.connect(menu.select_path)
    dlg.open()
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sleepviewer.model_messages import (
    AnnotationTuple,
    Failure,
    FinetuneProgress,
    FinetuneResponse,
    FinetuneSource,
)
from sleepviewer.model_registry import new_model_dir, read_entry, read_status

SCORED: Final[tuple[str, ...]] = ("W", "N1", "N2", "N3", "REM")
ERROR_STYLE: Final[str] = "color: #b00020;"
OK_STYLE: Final[str] = "color: #1b7f3b;"


# -- what the recordings hold (Qt-free) -----------------------------------------------------
@dataclass(frozen=True)
class RecordingSummary:
    """A candidate recording: its scored epochs per stage, or why it cannot be used."""

    path: str
    stage_counts: dict[str, int] = field(default_factory=dict)
    error: str = ""
    annotations: tuple[AnnotationTuple, ...] | None = None  # the viewer's scoring
    sidecar: str | None = None

    @property
    def name(self) -> str:
        """The file name."""
        return Path(self.path).name

    @property
    def n_scored(self) -> int:
        """Epochs scored W, N1, N2, N3 or REM."""
        return sum(self.stage_counts.get(s, 0) for s in SCORED)

    def describe(self) -> str:
        """``"night.edf: 120 scored epochs (W 40, N2 60, REM 20)"``."""
        if self.error:
            return f"{self.name}: cannot be read ({self.error})"
        if not self.n_scored:
            return f"{self.name}: no scored epochs"
        parts = ", ".join(f"{s} {self.stage_counts[s]}" for s in SCORED
                          if self.stage_counts.get(s))
        return f"{self.name}: {self.n_scored} scored epochs ({parts})"

    def source(self) -> FinetuneSource:
        """The worker's view of it."""
        return FinetuneSource(self.path, self.annotations, self.sidecar)

    @classmethod
    def from_annotations(
        cls, path: str | Path, annotations: Sequence[Any], duration_s: float
    ) -> RecordingSummary:
        """The open recording with the viewer's annotations (``Annotation`` objects or tuples)."""
        from sleeplm_core.io.annotations import Annotation, Annotations
        from sleeplm_core.io.hypnogram import Hypnogram

        tuples = tuple(
            (float(a.onset_s), float(a.duration_s), str(a.label), a.channel)
            if isinstance(a, Annotation) else (float(a[0]), float(a[1]), str(a[2]), a[3])
            for a in annotations
        )
        hyp = Hypnogram.from_annotations(Annotations(Annotation(*t) for t in tuples), duration_s)
        return cls(str(path), _counts(hyp), annotations=tuples)

    @classmethod
    def from_file(cls, path: str | Path) -> RecordingSummary:
        """Read a recording's own annotations and its sidecar (header only, no signals)."""
        from sleeplm_core.errors import SleepLMError
        from sleeplm_core.io.recording import Recording
        from sleeplm_core.io.sidecar import find_sidecar

        sidecar = find_sidecar(path)
        try:
            with Recording.open(path, annotations=sidecar) as rec:
                counts = _counts(rec.hypnogram)
        except SleepLMError as exc:
            return cls(str(path), error=_short(exc.one_line()))
        except (OSError, ValueError) as exc:
            return cls(str(path), error=_short(f"{type(exc).__name__}: {exc}"))
        return cls(str(path), counts, sidecar=str(sidecar) if sidecar else None)


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _counts(hyp: Any) -> dict[str, int]:
    if hyp is None:
        return {}
    counts = Counter(str(s) for s in hyp.stages)
    return {s: counts[s] for s in SCORED if counts.get(s)}


def precheck(
    recordings: Sequence[RecordingSummary], mode: str = "full", k: int = 5,
    base_ok: bool = True,
) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of a fine-tune on ``recordings``; it may start without problems.

    Problems: nothing selected, an unreadable file, no scored epochs, a single stage class,
    no base model. Warnings: a stage with fewer than ``k`` epochs in few-shot mode.
    """
    problems: list[str] = []
    warnings: list[str] = []
    if not base_ok:
        problems.append("no base model to start from (install or train one first)")
    if not recordings:
        problems.append("no recording selected")
        return problems, warnings
    for r in recordings:
        if r.error:
            problems.append(f"{r.name} cannot be read: {r.error}")
    total: Counter[str] = Counter()
    for r in recordings:
        if not r.error:
            total.update(r.stage_counts)
    classes = [s for s in SCORED if total.get(s)]
    if not classes:
        if any(not r.error for r in recordings):
            problems.append("no scored epochs: score some epochs (W, N1, N2, N3, REM) first")
    elif len(classes) == 1:
        problems.append(
            f"only one stage class ({classes[0]}) is scored: at least two are needed")
    if mode == "fewshot" and len(classes) >= 2:
        few = [f"{s} {total[s]}" for s in classes if total[s] < k]
        if few:
            warnings.append(f"fewer than K={k} epochs of {', '.join(few)}")
        missing = [s for s in SCORED if not total.get(s)]
        if missing:
            warnings.append(f"no {', '.join(missing)} scored: the head cannot predict them")
    return problems, warnings


def eta_words(seconds: float | None) -> str:
    """``"about 20 s left"`` (empty when unknown)."""
    if seconds is None:
        return ""
    from sleepviewer.workers import eta_text

    return eta_text(seconds)


# -- the dialog -----------------------------------------------------------------------------
class FineTuneDialog(QDialog):
    """Pick scored recordings, a mode and steps; run the fine-tune in the worker; report.

    Parameters
    ----------
    host : WorkerHost
        Runs the job (its ``finetune``, ``cancel``, ``jobProgress``, ``finished``,
        ``requestFailed``, ``cancelled``).
    base : str or Path or None
        The checkpoint to start from (a folder); ``None`` or missing blocks the start.
    models_dir : str or Path
        The user's models folder; the new model goes to a new sub-folder.
    current : RecordingSummary or None
        The open recording with the viewer's scoring (preselected).
    parent : QWidget or None
        Qt parent.

    Signals
    -------
    useModelRequested(str)
        The user wants the new checkpoint folder in use.
    finetuned(str)
        A new checkpoint folder was written (complete).
    """

    useModelRequested = pyqtSignal(str)
    finetuned = pyqtSignal(str)

    def __init__(
        self,
        host: Any,
        base: str | Path | None,
        models_dir: str | Path,
        current: RecordingSummary | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune SleepLM on these recordings")
        self.setObjectName("FineTuneDialog")
        self.host = host
        self.base = Path(base) if base is not None else None
        self.models_dir = Path(models_dir)
        self.request_id: int | None = None
        self.out_dir: Path | None = None
        self.result_dir: Path | None = None
        self.state = "idle"  # idle, running, done, cancelled, failed
        self._build_recordings()
        self._build_options()
        self._build_run()
        self._layout()
        if current is not None:
            self.add_summary(current, checked=True)
        self._connect_host()
        self.update_precheck()

    # -- construction -----------------------------------------------------------------------
    def _build_recordings(self) -> None:
        self.recordings_box = QGroupBox("Scored recordings")
        self.recording_list = QListWidget()
        self.recording_list.setMinimumHeight(90)
        self.recording_list.itemChanged.connect(self._on_recording_list_itemChanged)
        self.add_button = QPushButton("Add EDF…")
        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._on_remove_button_clicked)
        lay = QVBoxLayout(self.recordings_box)
        lay.addWidget(self.recording_list)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        lay.addLayout(row)

    def _build_options(self) -> None:
        self.options_box = QGroupBox("How")
        self.full_radio = QRadioButton("Full fine-tune (continue training the model)")
        self.fewshot_radio = QRadioButton("Few-shot stage head (the model stays as it is)")
        self.full_radio.setChecked(True)
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.full_radio)
        self.mode_group.addButton(self.fewshot_radio)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100_000)
        self.steps_spin.setValue(200)
        self.steps_spin.setSuffix(" steps")
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 1000)
        self.k_spin.setValue(10)
        self.k_spin.setSuffix(" epochs per stage")
        for w in (self.full_radio, self.fewshot_radio):
            w.toggled.connect(self._on_mode_toggled)
        self.k_spin.valueChanged.connect(lambda _v: self.update_precheck())
        base = str(self.base) if self.base is not None else "none installed"
        self.base_label = QLabel(base)
        self.base_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.out_label = QLabel(f"a new folder in {self.models_dir}")
        self.out_label.setWordWrap(True)
        form = QFormLayout(self.options_box)
        form.addRow(self.full_radio)
        form.addRow("Training:", self.steps_spin)
        form.addRow(self.fewshot_radio)
        form.addRow("Support set:", self.k_spin)
        form.addRow("Start from:", self.base_label)
        form.addRow("New model:", self.out_label)

    def _build_run(self) -> None:
        self.check_label = QLabel()
        self.check_label.setWordWrap(True)
        self.check_label.setObjectName("precheck")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%p%")
        self.progress_bar.setVisible(False)  # until a run starts
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button = QPushButton("Use this model")
        self.use_button.setVisible(False)
        self.use_button.clicked.connect(self._on_use_button_clicked)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)

    def _layout(self) -> None:
        lay = QVBoxLayout(self)
        lay.addWidget(self.recordings_box)
        lay.addWidget(self.options_box)
        lay.addWidget(self.check_label)
        lay.addWidget(self.progress_bar)
        lay.addWidget(self.status_label)
        row = QHBoxLayout()
        row.addWidget(self.use_button)
        row.addStretch(1)
        for b in (self.start_button, self.cancel_button, self.close_button):
            row.addWidget(b)
        lay.addLayout(row)
        self.resize(620, 560)
        self._on_mode_toggled()

    def _connect_host(self) -> None:
        self.host.jobProgress.connect(self._on_host_jobProgress)
        self.host.finished.connect(self._on_host_finished)
        self.host.requestFailed.connect(self._on_host_requestFailed)
        self.host.cancelled.connect(self._on_host_cancelled)

    def _disconnect_host(self) -> None:
        for sig, slot in ((self.host.jobProgress, self._on_host_jobProgress),
                          (self.host.finished, self._on_host_finished),
                          (self.host.requestFailed, self._on_host_requestFailed),
                          (self.host.cancelled, self._on_host_cancelled)):
            with contextlib.suppress(TypeError, RuntimeError):
                sig.disconnect(slot)

    # -- recordings -------------------------------------------------------------------------
    def add_summary(self, summary: RecordingSummary, checked: bool = True) -> None:
        """Add one candidate recording (replacing one of the same path)."""
        for i in range(self.recording_list.count()):
            item = self.recording_list.item(i)
            if item is not None and item.data(Qt.ItemDataRole.UserRole).path == summary.path:
                self.recording_list.takeItem(i)
                break
        item = QListWidgetItem(summary.describe())
        item.setData(Qt.ItemDataRole.UserRole, summary)
        item.setToolTip(summary.path)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.recording_list.addItem(item)
        self.update_precheck()

    def add_files(self, paths: Sequence[str | Path]) -> None:
        """Add recordings read from disk (their own annotations plus sidecars).

        A file already listed is skipped: the open one keeps the viewer's scoring.
        """
        listed = {r.path for r in self._summaries()}
        for p in paths:
            if str(p) not in listed:
                self.add_summary(RecordingSummary.from_file(p))

    def _summaries(self) -> list[RecordingSummary]:
        items = (self.recording_list.item(i) for i in range(self.recording_list.count()))
        return [it.data(Qt.ItemDataRole.UserRole) for it in items if it is not None]

    def selected(self) -> list[RecordingSummary]:
        """The checked recordings."""
        out = []
        for i in range(self.recording_list.count()):
            item = self.recording_list.item(i)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(Qt.ItemDataRole.UserRole))
        return out

    # -- options and pre-check --------------------------------------------------------------
    @property
    def mode(self) -> str:
        """``"full"`` or ``"fewshot"``."""
        return "fewshot" if self.fewshot_radio.isChecked() else "full"

    def problems(self) -> tuple[list[str], list[str]]:
        """The pre-check of the current choice (see :func:`precheck`)."""
        base_ok = self.base is not None and self.base.exists()
        return precheck(self.selected(), self.mode, self.k_spin.value(), base_ok)

    def update_precheck(self) -> bool:
        """Show what is missing; enable Start when nothing is. Returns whether it may start."""
        problems, warnings = self.problems()
        running = self.state == "running"
        if problems:
            self.check_label.setText("Cannot start yet:\n• " + "\n• ".join(problems))
            self.check_label.setStyleSheet(ERROR_STYLE)
        else:
            sel = self.selected()
            n = sum(r.n_scored for r in sel)
            text = f"Ready: {len(sel)} recording{'s' if len(sel) != 1 else ''}, {n} scored epochs."
            if warnings:
                text += "\nNote: " + "; ".join(warnings) + "."
            self.check_label.setText(text)
            self.check_label.setStyleSheet(OK_STYLE)
        self.start_button.setEnabled(not problems and not running)
        return not problems

    # -- running ----------------------------------------------------------------------------
    def start(self) -> bool:
        """Run the pre-check and, if it passes, send the fine-tune to the worker."""
        if self.state == "running" or not self.update_precheck() or self.base is None:
            return False
        sel = self.selected()
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = new_model_dir(self.models_dir, sel[0].path)
        self.result_dir = None
        self.request_id = self.host.finetune(
            self.base, self.out_dir, [r.source() for r in sel], mode=self.mode,
            steps=self.steps_spin.value(), k=self.k_spin.value(),
        )
        self._set_running(True)
        self.progress_bar.setValue(0)
        self.progress_bar.setVisible(True)
        self.status_label.setStyleSheet("")
        self.status_label.setText("Preparing the recordings…")
        self.out_label.setText(str(self.out_dir))
        return True

    def cancel(self) -> None:
        """Stop the run at its next step (the app stays usable)."""
        if self.state != "running":
            return
        self.host.cancel("finetune")
        self.status_label.setText("Stopping after the current step…")
        self.cancel_button.setEnabled(False)

    def _set_running(self, running: bool) -> None:
        self.state = "running" if running else self.state
        for w in (self.recordings_box, self.options_box):
            w.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.start_button.setEnabled(not running)
        if running:
            self.use_button.setVisible(False)

    def _finish(self, state: str, text: str, error: bool = False) -> None:
        self.state = state
        self._set_running(False)
        self.status_label.setText(text)
        self.status_label.setStyleSheet(ERROR_STYLE if error else "")
        self.update_precheck()

    # -- slots ------------------------------------------------------------------------------
    def _on_mode_toggled(self, *_args: Any) -> None:
        full = self.mode == "full"
        self.steps_spin.setEnabled(full)
        self.k_spin.setEnabled(not full)
        self.update_precheck()

    def _on_recording_list_itemChanged(self, _item: QListWidgetItem) -> None:  # noqa: N802
        self.update_precheck()

    def _on_add_button_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add scored recordings", "", "Recordings (*.edf *.EDF *.bdf *.BDF)")
        if paths:
            self.add_files(paths)

    def _on_remove_button_clicked(self) -> None:
        row = self.recording_list.currentRow()
        if row >= 0:
            self.recording_list.takeItem(row)
            self.update_precheck()

    def _on_use_button_clicked(self) -> None:
        if self.result_dir is not None:
            self.useModelRequested.emit(str(self.result_dir))
            self.use_button.setEnabled(False)
            self.use_button.setText("In use")

    def _on_host_jobProgress(self, p: FinetuneProgress) -> None:  # noqa: N802
        if p.request_id != self.request_id or self.state != "running":
            return
        total = max(p.total, 1)
        if p.phase == "shards":
            self.progress_bar.setValue(int(5 * p.step / total))
            self.status_label.setText(f"Reading recording {min(p.step + 1, p.total)} of "
                                      f"{p.total}…")
            return
        self.progress_bar.setValue(5 + int(95 * p.step / total))
        if p.phase == "fewshot":
            self.status_label.setText(f"Embedding the support epochs: {p.step} of {p.total}")
            return
        parts = [f"Step {p.step} of {p.total}"]
        if p.loss is not None:
            parts.append(f"loss {p.loss:.3f}")
        eta = eta_words(p.eta_s) if p.step < p.total else ""
        if eta:
            parts.append(eta)
        self.status_label.setText(" · ".join(parts))

    def _on_host_finished(self, response: Any) -> None:
        if not isinstance(response, FinetuneResponse) or response.request_id != self.request_id:
            return
        self.result_dir = Path(response.out_dir)
        self.progress_bar.setValue(100)
        what = "stage head" if response.mode == "fewshot" else f"checkpoint (step {response.step})"
        metric = ""
        if "loss" in response.metrics:
            metric = f", final loss {response.metrics['loss']:.3f}"
        elif response.metrics.get("accuracy") is not None:
            metric = f", held-out accuracy {response.metrics['accuracy']:.0%}"
        self._finish("done", f"Done in {response.seconds:.0f} s{metric}. The new {what} is in\n"
                             f"{self.result_dir}")
        self.use_button.setVisible(True)
        self.use_button.setEnabled(True)
        self.use_button.setText("Use this model")
        self.finetuned.emit(str(self.result_dir))

    def _on_host_requestFailed(self, failure: Failure) -> None:  # noqa: N802
        if failure.request_id != self.request_id:
            return
        self._finish("failed", f"The fine-tune stopped: {failure.message}.{self._kept()}",
                     error=True)

    def _on_host_cancelled(self, request_id: int) -> None:
        if request_id != self.request_id or self.state != "running":
            return
        self._finish("cancelled", f"Cancelled.{self._kept()}")

    def _kept(self) -> str:
        """What a stopped run left behind."""
        if self.out_dir is None:
            return ""
        entry = read_entry(self.out_dir)
        if entry is None:
            return " Nothing was kept."
        self.result_dir = self.out_dir
        step = read_status(self.out_dir).get("step", entry.step)
        self.use_button.setVisible(True)
        self.use_button.setEnabled(True)
        return f" The last complete checkpoint (step {step}) was kept in\n{self.out_dir}"

    def done(self, result: int) -> None:  # noqa: D102 - closing stops a run
        if self.state == "running":
            self.host.cancel("finetune")
            self.state = "cancelled"
        self._disconnect_host()
        super().done(result)


__all__ = ["FineTuneDialog", "RecordingSummary", "eta_words", "precheck"]
