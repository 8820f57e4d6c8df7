"""Redaction tables: what is hidden, what is not, and what one utterance tells the next."""

from __future__ import annotations

import pytest

from loopline.compliance.redaction import (
    CARD_WINDOW_MS,
    RedactionContext,
    luhn_valid,
    redact,
)

CARD_CONTEXT = RedactionContext(card_until_ms=60_000, payment_until_ms=120_000)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4242424242424242", True),
        ("4111111111111111", True),
        ("378282246310005", True),  # Amex test number
        ("6011111111111117", True),
        ("4242424242424243", False),
        ("1234567812345678", False),
        ("", False),
        ("12a4", False),
    ],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        # Card numbers, as Whisper writes them and as people say them.
        ("My card number is 4242 4242 4242 4242.", "My card number is [CARD].", ["card"]),
        ("it's 4242-4242-4242-4242", "it's [CARD]", ["card"]),
        ("4242424242424242", "[CARD]", ["card"]),
        ("card 3782 822463 10005 thanks", "card [CARD] thanks", ["card"]),
        (
            "four two four two four two four two four two four two four two four two",
            "[CARD]",
            ["card"],
        ),
        (
            "It's four one one one, one one one one, one one one one, one one one one.",
            "It's [CARD].",
            ["card"],
        ),
        (
            "six oh one one, double one one one, one one one one, one one one seven",
            "[CARD]",
            ["card"],
        ),
        (
            "My card is 4242 4242 4242 4242, expiry 12/26 and the code is 123.",
            "My card is [CARD], expiry [EXPIRY] and the code is [CVV].",
            ["card", "expiry", "cvv"],
        ),
        (
            "4242 4242 4242 4242 12 26 123",
            "[CARD] [EXPIRY] [CVV]",
            ["card", "expiry", "cvv"],
        ),
        # Near misses that fail Luhn stay as they are, and so do numbers that are no card.
        ("It is 4242-4242-4242-4243 I think", "It is 4242-4242-4242-4243 I think", []),
        ("order 1234 5678 1234 5678", "order 1234 5678 1234 5678", []),
        ("We have 3 cars and 12 dogs", "We have 3 cars and 12 dogs", []),
        ("the policy number is 4111", "the policy number is 4111", []),
        ("It costs 1,250 dollars a year", "It costs 1,250 dollars a year", []),
        ("I called twenty three times", "I called twenty three times", []),
        ("no one knows, one by one", "no one knows, one by one", []),
        # Social security numbers.
        ("my social is 123 45 6789", "my social is [SSN]", ["ssn"]),
        ("SSN 123-45-6789 please", "SSN [SSN] please", ["ssn"]),
        ("it's 123-45-6789", "it's [SSN]", ["ssn"]),
        (
            "social security one two three four five six seven eight nine",
            "social security [SSN]",
            ["ssn"],
        ),
        # Dates of birth.
        ("I was born on March 3rd 1985 in Ohio", "I was born on [DOB] in Ohio", ["dob"]),
        ("date of birth is 03/15/1985", "date of birth is [DOB]", ["dob"]),
        (
            "my birthday is the fifteenth of march nineteen eighty five",
            "my birthday is the [DOB]",
            ["dob"],
        ),
        ("I was born in Texas", "I was born in Texas", []),
        # E-mail addresses, written and spoken.
        ("mail me at john.smith@example.org today", "mail me at [EMAIL] today", ["email"]),
        ("it's john dot smith at gmail dot com", "it's [EMAIL]", ["email"]),
        ("I'm at home dot", "I'm at home dot", []),
        # Phone numbers.
        ("call me at 415 555 0142 please", "call me at [PHONE] please", ["phone"]),
        ("(415) 555-0142", "([PHONE]", ["phone"]),
        ("+44 20 7946 0958", "+[PHONE]", ["phone"]),
        ("1 800 555 0199", "[PHONE]", ["phone"]),
        ("my number is 555 0142", "my number is [PHONE]", ["phone"]),
        (
            "four one five five five five oh one four two",
            "[PHONE]",
            ["phone"],
        ),
    ],
)
def test_redact(text: str, expected: str, kinds: list[str]) -> None:
    out, _ = redact(text)
    assert out.text == expected
    assert out.kinds == kinds
    for span in out.spans:
        assert 0 <= span.start < span.end <= len(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one two three", "[CVV]"),
        ("the security code is 4 5 6", "the security code is [CVV]"),
        ("expires twelve twenty six", "expires [EXPIRY]"),
        ("twelve twenty six", "[EXPIRY]"),
        ("it expires 04/27", "it expires [EXPIRY]"),
        ("expiry December 2026", "expiry [EXPIRY]"),
        ("the code on the back is seven seven seven", "the code on the back is [CVV]"),
        ("thanks, that's all", "thanks, that's all"),
    ],
)
def test_after_a_card_its_cvv_and_expiry_are_hidden(text: str, expected: str) -> None:
    out, _ = redact(text, CARD_CONTEXT, at_ms=5_000)
    assert out.text == expected


@pytest.mark.parametrize("text", ["one two three", "twelve twenty six", "the code is 123"])
def test_without_a_card_short_numbers_stay(text: str) -> None:
    assert redact(text)[0].text == text


def test_the_card_context_opens_and_closes() -> None:
    _, context = redact("my card is 4242 4242 4242 4242", at_ms=10_000)
    assert context.card_open(10_000 + CARD_WINDOW_MS)
    assert not context.card_open(10_001 + CARD_WINDOW_MS)
    assert redact("one two three", context, at_ms=12_000)[0].text == "[CVV]"
    assert redact("one two three", context, at_ms=90_000)[0].text == "one two three"


@pytest.mark.parametrize(
    ("text", "paying"),
    [
        ("I'd like to pay my bill", True),
        ("can I have the card number please", True),
        ("it's a visa", True),
        ("my car broke down", False),
        ("what's the weather", False),
    ],
)
def test_payment_mentions_open_the_payment_window(text: str, paying: bool) -> None:
    _, context = redact(text, at_ms=1_000)
    assert context.in_payment(2_000) is paying


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4242 4242", "my card is [NUMBER]"),
        ("My card number in 4242.42.", "My card number in [NUMBER]."),
        ("card 4242 4242 4 and", "card [NUMBER] and"),
        ("my card is four two four two four", "my card is [NUMBER]"),
        ("I have 3 kids", "I have 3 kids"),
        ("policy 4411 is old", "policy 4411 is old"),
    ],
)
def test_partials_hide_a_trailing_number_that_may_be_a_card(text: str, expected: str) -> None:
    assert redact(text, partial=True)[0].text == expected


def test_kinds_can_be_limited() -> None:
    text = "call 415 555 0142 about 4242 4242 4242 4242"
    out, _ = redact(text, kinds={"card"})
    assert out.text == "call 415 555 0142 about [CARD]"


def test_the_original_never_survives_in_the_result() -> None:
    text = "card 4242 4242 4242 4242 email a.b@c.com social 123-45-6789"
    out, context = redact(text)
    assert "4242" not in out.text and "a.b@c.com" not in out.text and "6789" not in out.text
    assert "4242" not in repr(out) and "4242" not in repr(context)
