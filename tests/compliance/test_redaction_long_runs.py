"""Digit runs longer than any card: Whisper loops on spoken digit groups ("four two four two"
becomes "2424242424..."), and a card number hides inside the loop. Found by the demo call."""

from __future__ import annotations

import pytest

from loopline.compliance.redaction import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "My card number is 2424242424242424242424242424.... thanks",
            "My card number is [NUMBER].... thanks",
        ),
        ("ref 12345678901234567890123 ok", "ref [NUMBER] ok"),
        # Card length and failing Luhn: still a near miss, left as said.
        ("order 1234 5678 1234 5678", "order 1234 5678 1234 5678"),
    ],
)
def test_a_run_longer_than_any_card_is_hidden(text: str, expected: str) -> None:
    redacted, _ = redact(text)
    assert redacted.text == expected
    assert "42424242" not in redacted.text
