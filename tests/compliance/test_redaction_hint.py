"""`may_redact`: the cheap test speech recognition uses to skip word timing. It may say yes
for nothing, never no for something `redact` would hide."""

from __future__ import annotations

import pytest

from loopline.compliance.redaction import (
    ALL_KINDS,
    PHI_ONLY_KINDS,
    RedactionContext,
    may_redact,
    redact,
)
from tests.compliance import test_redaction_tables as tables

EVERY_KIND = ALL_KINDS | PHI_ONLY_KINDS
CONTEXTS = [None, RedactionContext(card_until_ms=60_000, payment_until_ms=120_000)]


def _table_texts() -> list[str]:
    texts: list[str] = []
    for test in (tables.test_redact, tables.test_after_a_card_its_cvv_and_expiry_are_hidden):
        for mark in getattr(test, "pytestmark", []):
            if mark.name == "parametrize":
                texts.extend(str(row[0]) for row in mark.args[1])
    return texts


SENSITIVE = [
    *_table_texts(),
    "my date of birth is March third",
    "reach me at jane dot doe at example dot com",
    "my medical record number is MRN 00123456",
    "I was diagnosed with diabetes last year",
    "it expires in may",
    "the code on the back is one two three",
]
PLAIN = [
    "She had your dark suit in greasy wash water all year.",
    "I would like to cancel my subscription please",
    "can you tell me more about the premium plan",
    "thanks, that is great",
    "",
]


@pytest.mark.parametrize("text", SENSITIVE)
def test_whatever_redact_hides_is_flagged(text: str) -> None:
    found = any(
        redact(text, context, kinds=EVERY_KIND, partial=partial)[0].spans
        for context in CONTEXTS
        for partial in (False, True)
    )
    if found:
        assert may_redact(text)


def test_the_table_holds_text_that_redact_hides() -> None:
    hidden = [t for t in SENSITIVE if redact(t, CONTEXTS[1], kinds=EVERY_KIND)[0].spans]
    assert len(hidden) >= 35


@pytest.mark.parametrize("text", PLAIN)
def test_plain_speech_is_not_flagged(text: str) -> None:
    assert not may_redact(text)
    assert not redact(text, CONTEXTS[1], kinds=EVERY_KIND)[0].spans
