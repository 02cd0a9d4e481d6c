"""Decoded captions get their casing and spacing back."""

from __future__ import annotations

import pytest

from sleeplm_core.model.detok import cased_terms, tidy_caption
from sleeplm_core.model.tokenizer import CaptionTokenizer


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("spo2 fell to 89 % after a 13. 5 s apnea .", "SpO2 fell to 89% after a 13.5 s apnea."),
        ("n2 with spindles ( 12. 5 hz ) over c3 - m2", "N2 with spindles (12.5 Hz) over C3-M2"),
        ("ahi 14. 2 events / h . rem at 02 : 30", "AHI 14.2 events/h. REM at 02:30"),
        ("heart rate 62 bpm , rmssd 40 ms", "Heart rate 62 bpm, RMSSD 40 ms"),
        ("95 % of the night ' s typical breath", "95% of the night's typical breath"),
        ("the scorer marked 1 k - complex .", "The scorer marked 1 K-complex."),
        ("", ""),
    ],
)
def test_tidy_caption(raw: str, tidy: str) -> None:
    assert tidy_caption(raw) == tidy


def test_terms_come_from_the_templates() -> None:
    terms = cased_terms()
    assert terms["spo2"] == "SpO2"
    assert terms["rem"] == "REM"
    assert all(k == k.lower() for k in terms)


def test_decoder_round_trip_is_readable() -> None:
    text = "Obstructive apnea of 13.5 s, SpO2 nadir 88%."
    tok = CaptionTokenizer(None)
    assert tok.decode(tok.encode(text) + [3]) == text


def test_a_continuation_keeps_its_first_word() -> None:
    assert tidy_caption("about 80 bpm. regular", capitalize_first=False) == "about 80 bpm. Regular"
    assert tidy_caption("rem sleep", capitalize_first=False) == "REM sleep"
