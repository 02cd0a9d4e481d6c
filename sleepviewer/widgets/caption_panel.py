"""CaptionPanel: the night, the current segment and epoch in words, with links to evidence.

The panel shows two kinds of captions side by side, always labelled:

* **scored**: reference captions written by :mod:`sleeplm_core.captions` from the scoring,
  the annotations and the signal features. Every number in them is a
  :class:`~sleeplm_core.captions.facts.Fact`; a number whose fact comes from an annotation (or
  from a span of the night) is a link, and clicking it emits ``evidenceRequested(onset_s)``.
* **SleepLM**: captions the model generated (:class:`sleeplm_core.results.Caption`), and its
  answer to a question typed in the prompt field (``promptSubmitted(str)``).

The panel follows navigation through :meth:`CaptionPanel.set_position`; when it has no
SleepLM caption for the new epoch it emits ``captionsWanted(start_s, stop_s)`` and the owner
asks the model. Nothing here calls the model or reads the recording.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from PyQt6.QtCore import QEvent, QUrl, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sleeplm_core.io.annotations import Annotation
from sleeplm_core.results import Caption as ModelCaption
from sleeplm_core.results import Segment
from sleeplm_core.stages import EPOCH_S

MODALITY_NAMES: Final[dict[str, str]] = {
    "stage_event": "Stage and events",
    "brain": "Brain",
    "heart": "Heart",
    "respiratory": "Breathing",
    "somatic": "Muscles and position",
}
MODALITY_ORDER: Final[tuple[str, ...]] = tuple(MODALITY_NAMES)
_SPAN = re.compile(r":(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)(?::|$)")
_ANNOTATION = re.compile(r"^annotation:(\d+)(?::|$)")
EVIDENCE_SCHEME: Final[str] = "evidence"


def _badge(kind: str, dark: bool) -> str:
    if kind == "scored":
        bg, fg = ("#3a3d44", "#e6e6e6") if dark else ("#e8e8e8", "#303030")
    else:
        bg, fg = ("#1f3b66", "#cfe0ff") if dark else ("#dde8fb", "#17407f")
    return (f'<span style="background-color:{bg}; color:{fg}; font-size:small">'
            f"&nbsp;{kind}&nbsp;</span>")


def evidence_onset(
    source: str,
    annotations: Sequence[Annotation],
    epoch_onset_s: float | None = None,
    stages: Sequence[str] | None = None,
) -> float | None:
    """Where in the night a fact's evidence lies (seconds), or ``None`` when nowhere in one place.

    ``annotation:<i>:...`` points at annotation ``i``; a source naming a span
    (``count:600-900:respiratory``) at its start; ``feature:...`` at the epoch it was measured
    in; ``stats:SOL`` and ``stats:Lat_REM`` at the first sleep and the first REM epoch.
    """
    m = _ANNOTATION.match(source)
    if m is not None:
        i = int(m.group(1))
        return float(annotations[i].onset_s) if 0 <= i < len(annotations) else None
    m = _SPAN.search(source)
    if m is not None:
        return float(m.group(1))
    if source.startswith("feature:"):
        return epoch_onset_s
    if stages is not None and source in ("stats:SOL", "stats:Lat_REM"):
        wanted = ("N1", "N2", "N3", "REM") if source == "stats:SOL" else ("REM",)
        first = next((e for e, s in enumerate(stages) if s in wanted), None)
        return None if first is None else first * EPOCH_S
    return None


def linked_html(
    caption: Any,
    annotations: Sequence[Annotation],
    epoch_onset_s: float | None = None,
    stages: Sequence[str] | None = None,
    link_color: str | None = None,
) -> str:
    """A scored caption as HTML whose stated numbers link to their evidence.

    ``caption`` is a :class:`sleeplm_core.captions.facts.Caption`: its ``stated`` numbers
    appear in ``text`` in order, each naming the fact it renders. ``link_color`` (a CSS
    colour) overrides the palette's link colour.
    """
    text: str = caption.text
    sources = {f.name: f.source for f in caption.facts}
    out: list[str] = []
    pos = 0
    for stated in caption.stated:
        at = _find_number(text, stated.text, pos)
        if at < 0:
            continue
        onset = evidence_onset(sources.get(stated.fact, ""), annotations, epoch_onset_s, stages)
        out.append(html.escape(text[pos:at]))
        number = html.escape(stated.text)
        if onset is None:
            out.append(number)
        else:
            style = f' style="color:{link_color}"' if link_color else ""
            out.append(f'<a href="{EVIDENCE_SCHEME}:{onset:.3f}"{style}>{number}</a>')
        pos = at + len(stated.text)
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _find_number(text: str, number: str, start: int) -> int:
    """Index of ``number`` in ``text`` from ``start``, not inside a longer number or a name."""
    for m in re.finditer(re.escape(number), text[start:]):
        a = start + m.start()
        b = a + len(number)
        before = text[a - 1] if a > 0 else " "
        after = text[b] if b < len(text) else " "
        if not (before.isalnum() or before == ".") and not (
            after.isdigit() or (after == "." and b + 1 < len(text) and text[b + 1].isdigit())
        ):
            return a
    return -1


CHECK_MARKS: Final[dict[str, tuple[str, str, str]]] = {
    # status: (mark, light colour, dark colour)
    "disagrees": ("✗ disagrees with the signal", "#b3261e", "#ff8a80"),
    "absent": ("✗ no such channel", "#b3261e", "#ff8a80"),
    "unchecked": ("? not checked", "#6b6b6b", "#9aa0a6"),
}


def checked_html(caption: ModelCaption, dark: bool = False) -> str:
    """A generated caption as HTML, each sentence marked by its check against the signal.

    Sentences that disagree with the epoch's measurements (or speak of a channel the file
    lacks) are struck through in red with the reason; unchecked ones are grey with a "?".
    """
    if not caption.checks:
        return html.escape(caption.text)
    out = []
    for c in caption.checks:
        text = html.escape(c.sentence)
        if c.status not in CHECK_MARKS:
            out.append(text)
            continue
        mark, light, night = CHECK_MARKS[c.status]
        colour = night if dark else light
        why = f": {html.escape(c.reason)}" if c.reason else ""
        body = f"<s>{text}</s>" if c.status in ("disagrees", "absent") else f"<i>{text}</i>"
        out.append(f"<span style='color:{colour}'>{body} <small>[{mark}{why}]</small></span>")
    return " ".join(out)


class CaptionPanel(QWidget):
    """The night summary and the current segment's and epoch's captions.

    Parameters
    ----------
    parent : QWidget or None
        Qt parent.

    Signals
    -------
    evidenceRequested(float)
        Jump to the event a clicked fact came from (seconds from the recording start).
    promptSubmitted(str)
        A question for the model about the current epoch.
    captionsWanted(float, float)
        The panel has no SleepLM captions for ``[start_s, stop_s)``.
    """

    evidenceRequested = pyqtSignal(float)
    promptSubmitted = pyqtSignal(str)
    captionsWanted = pyqtSignal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.start: datetime | None = None
        self.duration_s = 0.0
        self.position_s: float | None = None
        self.reference: Any = None
        self.annotations: tuple[Annotation, ...] = ()
        self.stages: list[str] | None = None
        self.generated: dict[int, dict[str, ModelCaption]] = {}
        self.model_note = ""
        self.reference_note = "Scored captions are being written…"
        self.match: Segment | None = None
        self.answer: tuple[str, str, bool] | None = None  # (prompt, text, pending)
        self._build()
        self.render()

    def _build(self) -> None:
        self.title_label = QLabel(self)
        self.title_label.setObjectName("captionTitle")
        self.show_scored = QCheckBox("scored", self)
        self.show_scored.setChecked(True)
        self.show_scored.setToolTip("Reference captions written from the scoring and signals")
        self.show_model = QCheckBox("SleepLM", self)
        self.show_model.setChecked(True)
        self.show_model.setToolTip("Captions the model generated from the signals")
        for box in (self.show_scored, self.show_model):
            box.toggled.connect(self.render)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.title_label, 1)
        top.addWidget(self.show_scored)
        top.addWidget(self.show_model)
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("captionBrowser")
        self.browser.setOpenLinks(False)
        self.browser.setOpenExternalLinks(False)
        self.browser.anchorClicked.connect(self._on_browser_anchorClicked)
        self.prompt_edit = QLineEdit(self)
        self.prompt_edit.setObjectName("promptEdit")
        self.prompt_edit.setPlaceholderText("Ask SleepLM about this epoch: describe breathing")
        self.prompt_edit.setClearButtonEnabled(True)
        self.prompt_edit.returnPressed.connect(self.submit_prompt)
        self.ask_button = QPushButton("Ask", self)
        self.ask_button.clicked.connect(self.submit_prompt)
        ask = QHBoxLayout()
        ask.setContentsMargins(0, 0, 0, 0)
        ask.addWidget(self.prompt_edit, 1)
        ask.addWidget(self.ask_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.setSpacing(4)
        lay.addLayout(top)
        lay.addWidget(self.browser, 1)
        lay.addLayout(ask)

    # -- inputs -----------------------------------------------------------------------------
    def set_recording(self, start: datetime | None, duration_s: float) -> None:
        """Forget everything about the previous night."""
        self.start, self.duration_s = start, float(duration_s)
        self.position_s = None
        self.reference, self.annotations, self.stages = None, (), None
        self.generated.clear()
        self.match = self.answer = None
        self.model_note = ""
        self.reference_note = "Scored captions are being written…"
        self.render()

    def set_reference(
        self,
        captions: Any,
        annotations: Sequence[Annotation],
        stages: Sequence[str] | None = None,
    ) -> None:
        """Show scored captions (a ``NightCaptions``) whose facts index ``annotations``."""
        self.reference = captions
        self.annotations = tuple(annotations)
        self.stages = list(stages) if stages is not None else None
        self.reference_note = ""
        self.render()

    def set_reference_note(self, text: str) -> None:
        """Why there are no scored captions (e.g. the error that stopped them)."""
        self.reference_note = text
        self.render()

    def set_generated(self, captions: Sequence[ModelCaption]) -> None:
        """Add SleepLM captions (epoch level, any modality) to what the panel knows."""
        for c in captions:
            self.generated.setdefault(int(c.onset_s // EPOCH_S), {})[c.modality] = c
        self.model_note = ""
        self.render()

    def set_model_note(self, text: str) -> None:
        """Shown where SleepLM captions would be ("model not available: …")."""
        self.model_note = text
        self.render()

    def set_match(self, segment: Segment | None) -> None:
        """Show the search match the user is on (or none)."""
        self.match = segment
        self.render()

    def set_answer(self, prompt: str, captions: Sequence[ModelCaption]) -> None:
        """Show the model's answer to ``prompt``."""
        text = " ".join(c.text for c in captions[:1]) if captions else "(no answer)"
        self.answer = (prompt, text, False)
        self.ask_button.setEnabled(True)
        self.render()

    def set_answer_failed(self, prompt: str, message: str) -> None:
        """Show why the question could not be answered."""
        self.answer = (prompt, f"Could not answer: {message}", False)
        self.ask_button.setEnabled(True)
        self.render()

    def set_position(self, onset_s: float) -> None:
        """Follow navigation: show the captions of the epoch at ``onset_s``."""
        epoch = max(0, int(onset_s // EPOCH_S))
        changed = self.position_s is None or int(self.position_s // EPOCH_S) != epoch
        self.position_s = float(onset_s)
        if changed:
            self.render()
            if epoch not in self.generated and not self.model_note:
                self.captionsWanted.emit(epoch * EPOCH_S, (epoch + 1) * EPOCH_S)

    def submit_prompt(self) -> str | None:
        """Emit ``promptSubmitted`` with the prompt field's text (if any)."""
        text = self.prompt_edit.text().strip()
        if not text or self.position_s is None:
            return None
        self.answer = (text, "", True)
        self.ask_button.setEnabled(False)
        self.render()
        self.promptSubmitted.emit(text)
        return text

    # -- rendering --------------------------------------------------------------------------
    @property
    def epoch(self) -> int | None:
        """The epoch being shown (0-based), or ``None`` before the first position."""
        return None if self.position_s is None else int(self.position_s // EPOCH_S)

    def _clock(self, t: float) -> str:
        if self.start is None:
            s = int(t)
            return f"+{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
        return (self.start + timedelta(seconds=t)).strftime("%H:%M:%S")

    def _dark(self) -> bool:
        return self.palette().base().color().lightness() < 128

    def render(self) -> None:
        """Rebuild the HTML from what the panel knows."""
        epoch = self.epoch
        if epoch is None:
            self.title_label.setText("<b>Captions</b>")
            self.browser.setHtml("<p>Open a recording to read its night in words.</p>")
            return
        onset = epoch * EPOCH_S
        stage = ""
        if self.stages is not None and epoch < len(self.stages):
            stage = f" · scored {self.stages[epoch]}"
        self.title_label.setText(
            f"<b>Epoch {epoch + 1}</b> · {self._clock(onset)}{html.escape(stage)}"
        )
        parts = [
            self._answer_html(),
            self._match_html(),
            self._epoch_html(epoch, onset),
            self._segment_html(epoch),
            self._night_html(),
        ]
        self.browser.setHtml("".join(p for p in parts if p))

    def _link(self) -> str:
        return "#8ab8ff" if self._dark() else "#0b57d0"

    def changeEvent(self, event: QEvent | None) -> None:  # noqa: N802 - Qt API
        """Redraw with the new colours when the theme (palette) changes."""
        super().changeEvent(event)
        if event is not None and event.type() == QEvent.Type.PaletteChange:
            self.render()

    def _muted(self) -> str:
        return "#a8b0bc" if self._dark() else "#4a5563"

    def _heading(self, text: str) -> str:
        return (f"<h3 style='margin:10px 0 3px 0'>{html.escape(text)}</h3>")

    def _line(self, kind: str, body: str) -> str:
        return f"<p style='margin:2px 0 6px 0'>{_badge(kind, self._dark())} {body}</p>"

    def _answer_html(self) -> str:
        if self.answer is None:
            return ""
        prompt, text, pending = self.answer
        body = "<i>asking the model…</i>" if pending else html.escape(text)
        return self._heading(f"You asked: “{prompt}”") + self._line("SleepLM", body)

    def _match_html(self) -> str:
        s = self.match
        if s is None:
            return ""
        head = self._heading(f"Search match · {self._clock(s.onset_s)}, {s.duration_s:.0f} s, "
                             f"score {s.score:.2f}")
        body = html.escape(s.caption) if s.caption else "<i>no caption</i>"
        link = (f' <a href="{EVIDENCE_SCHEME}:{s.onset_s:.3f}" style="color:{self._link()}">'
                "go there</a>")
        return head + self._line("SleepLM", body + link)

    def _epoch_html(self, epoch: int, onset: float) -> str:
        scored: dict[str, Any] = {}
        if self.reference is not None and epoch < len(self.reference.epochs):
            scored = self.reference.epochs[epoch]
        generated = self.generated.get(epoch, {})
        rows: list[str] = []
        for modality in MODALITY_ORDER:
            lines = []
            if self.show_scored.isChecked() and modality in scored:
                # features were measured in this very epoch: only events and spans link
                body = linked_html(scored[modality], self.annotations, None, self.stages,
                                   self._link())
                lines.append(self._line("scored", body))
            if self.show_model.isChecked() and modality in generated:
                lines.append(self._line("SleepLM", checked_html(generated[modality],
                                                                self._dark())))
            if lines:
                rows.append(f"<p style='margin:6px 0 0 0; color:{self._muted()}'>"
                            f"<b>{MODALITY_NAMES[modality]}</b></p>"
                            + "".join(lines))
        notes = []
        if self.show_scored.isChecked() and not scored:
            notes.append(self._line("scored", f"<i>{html.escape(self.reference_note or 'none')}"
                                    "</i>"))
        if self.show_model.isChecked() and not generated:
            note = self.model_note or "the model is describing this epoch…"
            notes.append(self._line("SleepLM", f"<i>{html.escape(note)}</i>"))
        return (self._heading(f"This epoch · {self._clock(onset)}") + "".join(rows)
                + "".join(notes))

    def _segment_html(self, epoch: int) -> str:
        ref = self.reference
        if ref is None or not ref.segments or not self.show_scored.isChecked():
            return ""
        k = epoch // max(ref.segment_epochs, 1)
        if k >= len(ref.segments):
            return ""
        a = k * ref.segment_epochs * EPOCH_S
        b = min(a + ref.segment_epochs * EPOCH_S, max(self.duration_s, a))
        body = linked_html(ref.segments[k], self.annotations, None, self.stages, self._link())
        return (self._heading(f"This segment · {self._clock(a)}–{self._clock(b)}")
                + self._line("scored", body))

    def _night_html(self) -> str:
        ref = self.reference
        if ref is None or ref.night is None or not self.show_scored.isChecked():
            return ""
        body = linked_html(ref.night, self.annotations, None, self.stages, self._link())
        return self._heading("The night") + self._line("scored", body)

    # -- slots ------------------------------------------------------------------------------
    def _on_browser_anchorClicked(self, url: QUrl) -> None:  # noqa: N802 - Qt signal name
        text = url.toString()
        if not text.startswith(EVIDENCE_SCHEME + ":"):
            return
        try:
            onset = float(text.split(":", 1)[1])
        except ValueError:
            return
        if math.isfinite(onset):
            self.evidenceRequested.emit(onset)
