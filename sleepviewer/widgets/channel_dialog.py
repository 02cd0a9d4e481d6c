"""ChannelDialog: per-channel display filters, visibility, sensitivity, and new derivations."""

from __future__ import annotations

from dataclasses import replace

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from sleepviewer.montages import Derivation
from sleepviewer.state import ChannelView, FilterSpec

HIGHPASS_CHOICES: tuple[float | None, ...] = (None, 0.1, 0.3, 0.5, 1.0, 5.0, 10.0)
LOWPASS_CHOICES: tuple[float | None, ...] = (None, 15.0, 30.0, 35.0, 40.0, 70.0, 100.0)
NOTCH_CHOICES: tuple[float | None, ...] = (None, 50.0, 60.0)

COL_NAME, COL_VISIBLE, COL_HP, COL_LP, COL_NOTCH, COL_SENS = range(6)


def _combo(choices: tuple[float | None, ...], value: float | None, parent: QWidget) -> QComboBox:
    box = QComboBox(parent)
    for c in choices:
        box.addItem("Off" if c is None else f"{c:g} Hz", c)
    if value is not None and value not in choices:
        box.addItem(f"{value:g} Hz", value)
    box.setCurrentIndex(max(box.findData(value), 0))
    return box


class ChannelDialog(QDialog):
    """Edit the display settings of the montage's channels and add derivations.

    The dialog edits copies; the caller reads :meth:`result_channels` and
    :meth:`new_derivations` after ``accepted``. It is opened with ``open()`` (non-blocking).

    Parameters
    ----------
    channels : list of ChannelView
        The montage's channels (copied).
    source_names : list of str
        Channels of the recording, offered as derivation electrodes.
    focus : str or None
        Channel whose row is selected first.
    parent : QWidget or None
        Qt parent.
    """

    def __init__(
        self,
        channels: list[ChannelView],
        source_names: list[str],
        focus: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Channels: filters and derivations")
        self._channels = [replace(c) for c in channels]
        self._derivations: list[Derivation] = []
        layout = QVBoxLayout(self)
        layout.addWidget(self._build_table(focus), 1)
        layout.addWidget(self._build_derivation_box(source_names))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760, 520)

    # -- building ---------------------------------------------------------------------------
    def _build_table(self, focus: str | None) -> QTableWidget:
        table = QTableWidget(len(self._channels), 6, self)
        table.setHorizontalHeaderLabels(
            ["Channel", "Shown", "High-pass", "Low-pass", "Notch", "Sensitivity (/mm)"]
        )
        table.verticalHeader().setVisible(False)
        for row, ch in enumerate(self._channels):
            name = QLineEdit(ch.name, table)
            name.setReadOnly(True)
            table.setCellWidget(row, COL_NAME, name)
            shown = QCheckBox(table)
            shown.setChecked(ch.visible)
            table.setCellWidget(row, COL_VISIBLE, shown)
            table.setCellWidget(row, COL_HP, _combo(HIGHPASS_CHOICES, ch.filters.highpass_hz,
                                                    table))
            table.setCellWidget(row, COL_LP, _combo(LOWPASS_CHOICES, ch.filters.lowpass_hz, table))
            table.setCellWidget(row, COL_NOTCH, _combo(NOTCH_CHOICES, ch.filters.notch_hz, table))
            sens = QDoubleSpinBox(table)
            sens.setRange(0.0, 1e6)
            sens.setDecimals(3)
            sens.setSpecialValueText("auto")
            sens.setValue(ch.effective_sensitivity or 0.0)
            sens.setSuffix(f" {ch.unit}/mm" if ch.unit else "/mm")
            table.setCellWidget(row, COL_SENS, sens)
            if ch.name == focus:
                table.selectRow(row)
        table.resizeColumnsToContents()
        self.table = table
        return table

    def _build_derivation_box(self, source_names: list[str]) -> QGroupBox:
        box = QGroupBox("New derivation (positive − reference)", self)
        form = QFormLayout(box)
        self.derivation_name = QLineEdit(box)
        self.derivation_name.setPlaceholderText("e.g. C3-M2")
        self.positive = QComboBox(box)
        self.reference = QComboBox(box)
        self.positive.addItems(source_names)
        self.reference.addItems(source_names)
        add = QPushButton("Add", box)
        add.clicked.connect(self._on_add_clicked)
        row = QHBoxLayout()
        row.addWidget(self.positive)
        row.addWidget(self.reference)
        row.addWidget(add)
        form.addRow("Name", self.derivation_name)
        form.addRow("Positive / reference", row)
        self.derivation_list = QListWidget(box)
        self.derivation_list.setMaximumHeight(70)
        form.addRow("Added", self.derivation_list)
        return box

    # -- results ----------------------------------------------------------------------------
    def set_filters(self, name: str, spec: FilterSpec) -> None:
        """Select filter values for one channel (as a user would in the combos)."""
        row = [c.name for c in self._channels].index(name)
        for col, value in ((COL_HP, spec.highpass_hz), (COL_LP, spec.lowpass_hz),
                           (COL_NOTCH, spec.notch_hz)):
            box = self.table.cellWidget(row, col)
            assert isinstance(box, QComboBox)
            idx = box.findData(value)
            if idx < 0:
                box.addItem("Off" if value is None else f"{value:g} Hz", value)
                idx = box.count() - 1
            box.setCurrentIndex(idx)

    def result_channels(self) -> list[ChannelView]:
        """Return the channels with the settings chosen in the table."""
        out = []
        for row, ch in enumerate(self._channels):
            shown = self.table.cellWidget(row, COL_VISIBLE)
            hp = self.table.cellWidget(row, COL_HP)
            lp = self.table.cellWidget(row, COL_LP)
            notch = self.table.cellWidget(row, COL_NOTCH)
            sens = self.table.cellWidget(row, COL_SENS)
            assert isinstance(shown, QCheckBox) and isinstance(sens, QDoubleSpinBox)
            assert isinstance(hp, QComboBox) and isinstance(lp, QComboBox)
            assert isinstance(notch, QComboBox)
            new = replace(
                ch,
                visible=shown.isChecked(),
                filters=FilterSpec(hp.currentData(), lp.currentData(), notch.currentData()),
            )
            value = sens.value()
            if value > 0 and abs(value - (ch.effective_sensitivity or 0.0)) > 1e-9:
                new.sensitivity, new.gain = value, 1.0
            out.append(new)
        return out

    def new_derivations(self) -> list[Derivation]:
        """Return the derivations added in this dialog."""
        return list(self._derivations)

    def _on_add_clicked(self) -> None:
        pos, ref = self.positive.currentText(), self.reference.currentText()
        if not pos or not ref or pos == ref:
            return
        name = self.derivation_name.text().strip() or f"{pos}-{ref}"
        self._derivations.append(Derivation(name, pos, ref))
        self.derivation_list.addItem(f"{name} = {pos} − {ref}")
        self.derivation_name.clear()
