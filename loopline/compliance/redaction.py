"""Redaction of spoken and written personal data: pure, no I/O.

`redact(text, context, at_ms)` finds card numbers (spoken as digits or words, normalised, then
checked with Luhn), the CVV and expiry said after a card, US social security numbers, dates of
birth, e-mail addresses and phone numbers, and returns the text with `[CARD]`, `[SSN]`... in
their place together with each span's kind and position in the original. The original text
never leaves the caller: it is neither kept here nor put in any exception or log message.

A call's `RedactionContext` carries what one utterance tells the next: a card was just said (so
"one two three" a moment later is its CVV), or the call is in a payment (so keypad digits are
not forwarded).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Final, Literal

from loopline.compliance.phi import find_phi

RedactionKind = Literal[
    "card", "cvv", "expiry", "ssn", "dob", "email", "phone", "number", "mrn", "health"
]
ALL_KINDS: Final[frozenset[str]] = frozenset(
    ("card", "cvv", "expiry", "ssn", "dob", "email", "phone", "number")
)
# Health information (`compliance.phi`): only redacted when asked for by name.
PHI_ONLY_KINDS: Final[frozenset[str]] = frozenset(("mrn", "health"))
PLACEHOLDERS: Final[dict[str, str]] = {
    kind: f"[{kind.upper()}]" for kind in ALL_KINDS | PHI_ONLY_KINDS
}

# How long after a card (or a mention of paying) the call counts as being in a payment.
CARD_WINDOW_MS: Final = 60_000
PAYMENT_WINDOW_MS: Final = 120_000

_TOKEN = re.compile(r"\d+(?:st|nd|rd|th)?|[A-Za-z]+(?:'[A-Za-z]+)?|\S", re.IGNORECASE)
_SEPARATORS: Final = frozenset("-,./()+:;")
_DIGIT_WORDS: Final = {
    "zero": 0,
    "oh": 0,
    "o": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS: Final = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS: Final = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_REPEATS: Final = {"double": 2, "triple": 3}
_NUMBER_WORDS: Final = frozenset((*_DIGIT_WORDS, *_TEENS, *_TENS, *_REPEATS, "hundred"))
_MONTHS: Final = frozenset(
    (
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    )
)
_ORDINALS: Final = frozenset(
    (
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
        "thirtieth",
    )
)
_DATE_FILLER: Final = frozenset(("of", "the", "and", "thousand", "in"))
_DOB_KEYWORDS = re.compile(r"\b(born|birth|birthday|dob|d\.o\.b)\b", re.IGNORECASE)
_DOB_LEAD: Final = frozenset(("on", "is", "was", "it's", "its", "date", "my", "it", "the", "in"))
_EXPIRY_WORDS: Final = frozenset(("expiry", "expiration", "expires", "expire", "exp", "valid"))
_EXPIRY_WORDS_2: Final = frozenset(("thru", "through", "until", "date"))
_CVV_WORDS: Final = frozenset(
    ("cvv", "cvc", "cid", "security", "code", "back", "verification", "csc", "pin")
)
_SSN_WORDS = re.compile(r"\b(social|ssn|s\.s\.n)\b", re.IGNORECASE)
_PHONE_WORDS: Final = frozenset(
    ("phone", "number", "call", "reach", "cell", "mobile", "telephone", "callback", "text")
)
_PAYMENT = re.compile(
    r"\b(credit|debit|card\s+number|pay|paying|payment|visa|mastercard|amex)\b", re.IGNORECASE
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_SPOKEN_EMAIL = re.compile(
    r"\b[a-z0-9]+(?:\s+(?:dot|underscore|dash|hyphen)\s+[a-z0-9]+)*\s+at\s+"
    r"[a-z0-9]+(?:\s+(?:dot|dash)\s+[a-z0-9]+)*\s+dot\s+"
    r"(?:com|net|org|edu|gov|io|co|us|uk|info|biz|me)\b",
    re.IGNORECASE,
)
_SSN_SHAPE = re.compile(r"\d{3}[- ]\d{2}[- ]\d{4}")
_CARD_LENGTHS: Final = (16, 15, 14, 13, 19, 17, 18)
_GLUE = re.compile(r"[\s\-,./()+:;]*")


@dataclass(frozen=True, slots=True)
class RedactedSpan:
    kind: RedactionKind
    start: int  # character offsets in the original text
    end: int


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str  # with placeholders in place of every span
    spans: tuple[RedactedSpan, ...]  # in the original's coordinates, in order

    @property
    def kinds(self) -> list[str]:
        return [span.kind for span in self.spans]


@dataclass(frozen=True, slots=True)
class RedactionContext:
    """What earlier utterances of a call tell this one (times in ms of the call's audio)."""

    card_until_ms: int | None = None
    payment_until_ms: int | None = None

    def card_open(self, at_ms: int) -> bool:
        return self.card_until_ms is not None and at_ms <= self.card_until_ms

    def in_payment(self, at_ms: int) -> bool:
        """A card was said, or paying was mentioned, recently: keypad digits stay private."""
        if self.card_open(at_ms):
            return True
        return self.payment_until_ms is not None and at_ms <= self.payment_until_ms


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    lower: str
    start: int
    end: int

    @property
    def is_separator(self) -> bool:
        return len(self.text) == 1 and self.text in _SEPARATORS

    @property
    def is_numeric(self) -> bool:
        return self.text[0].isdigit() or self.lower in _NUMBER_WORDS


@dataclass(frozen=True, slots=True)
class _Element:
    """A piece of a spoken/written number: its digits and the tokens it spans."""

    digits: str
    first: int  # token indices, inclusive
    last: int


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if i % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(), m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _elements(tokens: list[_Token], first: int, last: int) -> list[_Element]:
    """The digits of the numeric tokens first..last, one element per spoken unit."""
    out: list[_Element] = []
    i = first
    while i <= last:
        tok = tokens[i]
        word = tok.lower
        if tok.is_separator:
            i += 1
            continue
        if tok.text[0].isdigit():
            out.append(_Element(re.sub(r"\D", "", tok.text), i, i))
            i += 1
            continue
        nxt = _next_numeric(tokens, i + 1, last)
        if word in _REPEATS and nxt is not None and tokens[nxt].lower in _DIGIT_WORDS:
            digit = str(_DIGIT_WORDS[tokens[nxt].lower])
            out.append(_Element(digit * _REPEATS[word], i, nxt))
            i = nxt + 1
            continue
        if word in _DIGIT_WORDS:
            after = _next_numeric(tokens, i + 1, last)
            if after is not None and tokens[after].lower == "hundred":
                value, end = _hundreds(tokens, i, after, last)
                out.append(_Element(value, i, end))
                i = end + 1
                continue
            out.append(_Element(str(_DIGIT_WORDS[word]), i, i))
            i += 1
            continue
        if word in _TEENS:
            out.append(_Element(str(_TEENS[word]), i, i))
            i += 1
            continue
        if word in _TENS:
            unit = _next_numeric(tokens, i + 1, last)
            if unit is not None and tokens[unit].lower in _DIGIT_WORDS:
                ones = _DIGIT_WORDS[tokens[unit].lower]
                if ones > 0 and tokens[unit].lower not in ("o", "oh"):
                    out.append(_Element(str(_TENS[word] + ones), i, unit))
                    i = unit + 1
                    continue
            out.append(_Element(str(_TENS[word]), i, i))
            i += 1
            continue
        i += 1  # "hundred" alone, "double" with nothing after: no digits of their own
    return out


def _hundreds(tokens: list[_Token], first: int, hundred: int, last: int) -> tuple[str, int]:
    """ "one hundred twenty three" -> ("123", index of the last token used)."""
    value = _DIGIT_WORDS[tokens[first].lower] * 100
    end = hundred
    nxt = _next_numeric(tokens, hundred + 1, last)
    if nxt is not None and tokens[nxt].lower == "and":
        nxt = _next_numeric(tokens, nxt + 1, last)
    if nxt is not None:
        word = tokens[nxt].lower
        if word in _TEENS:
            return str(value + _TEENS[word]), nxt
        if word in _TENS:
            value += _TENS[word]
            end = nxt
            unit = _next_numeric(tokens, nxt + 1, last)
            if unit is not None and tokens[unit].lower in _DIGIT_WORDS:
                value += _DIGIT_WORDS[tokens[unit].lower]
                end = unit
            return str(value), end
        if word in _DIGIT_WORDS:
            return str(value + _DIGIT_WORDS[word]), nxt
    return str(value), end


def _next_numeric(tokens: list[_Token], start: int, last: int) -> int | None:
    i = start
    while i <= last and tokens[i].is_separator:
        i += 1
    return i if i <= last else None


def _runs(tokens: list[_Token]) -> list[tuple[int, int]]:
    """Maximal stretches of numeric tokens joined only by separators: (first, last)."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        if not tokens[i].is_numeric:
            i += 1
            continue
        first = last = i
        j = i + 1
        while j < len(tokens):
            if tokens[j].is_numeric:
                last = j
            elif not tokens[j].is_separator:
                break
            j += 1
        runs.append((first, last))
        i = last + 1
    return runs


def _find_card(elements: list[_Element]) -> tuple[int, int] | None:
    """The element range [i, j) whose digits form a Luhn-valid card number, if any."""
    for i in range(len(elements)):
        lengths: dict[int, int] = {}
        total = 0
        for j in range(i, len(elements)):
            total += len(elements[j].digits)
            if total > 19:
                break
            lengths[total] = j + 1
        for length in _CARD_LENGTHS:
            j = lengths.get(length, 0)
            if j and luhn_valid("".join(e.digits for e in elements[i:j])):
                return i, j
    return None


def _words_before(tokens: list[_Token], index: int, count: int = 5) -> set[str]:
    return {t.lower for t in tokens[max(0, index - count) : index]}


def _classify(
    tokens: list[_Token],
    elements: list[_Element],
    *,
    card_open: bool,
    ssn_mentioned: bool,
    at_end: bool,
    partial: bool,
) -> tuple[RedactionKind, str] | None:
    digits = "".join(e.digits for e in elements)
    n = len(digits)
    first_token = elements[0].first
    before = _words_before(tokens, first_token)
    plus = first_token > 0 and tokens[first_token - 1].text == "+"
    if card_open:
        if before & _EXPIRY_WORDS or (before & _EXPIRY_WORDS_2 and n in (3, 4, 6)):
            return "expiry", digits
        if before & _MONTHS and n in (2, 4):
            return "expiry", digits
        if before & _CVV_WORDS and n in (3, 4):
            return "cvv", digits
        if n == 4 and 1 <= int(digits[:2]) <= 12 and len(elements) >= 2:
            return "expiry", digits
        if n in (3, 4):
            return "cvv", digits
        if n == 6 and 1 <= int(digits[:2]) <= 12 and digits[2:4] == "20":
            return "expiry", digits
    original = " ".join(tokens[i].text for i in range(first_token, elements[-1].last + 1))
    if n == 9 and (ssn_mentioned or _SSN_SHAPE.fullmatch(original.replace(" - ", "-"))):
        return "ssn", digits
    if plus and 8 <= n <= 15:
        return "phone", digits
    if n == 10 and digits[0] in "23456789":
        return "phone", digits
    if n == 11 and digits[0] == "1" and digits[1] in "23456789":
        return "phone", digits
    if n == 7 and before & _PHONE_WORDS:
        return "phone", digits
    if n > max(_CARD_LENGTHS):
        # Longer than any card: a recogniser looping on digit groups ("2424242424...") or
        # several numbers run together. A card may hide inside it; hide it all.
        return "number", digits
    if partial and (n >= 6 or (at_end and n >= 4)):
        # The utterance is still being spoken: these may be the first digits of a card.
        return "number", digits
    return None


def _dob_spans(text: str, tokens: list[_Token]) -> list[tuple[int, int]]:
    """Token ranges of the dates that follow a birth keyword."""
    spans: list[tuple[int, int]] = []
    for match in _DOB_KEYWORDS.finditer(text):
        i = next((k for k, t in enumerate(tokens) if t.start >= match.end()), len(tokens))
        while i < len(tokens) and (tokens[i].lower in _DOB_LEAD or tokens[i].is_separator):
            i += 1
        first = i
        last = -1
        seen_value = False
        while i < len(tokens) and i - first < 14:
            tok = tokens[i]
            word = tok.lower
            if tok.is_numeric or word in _MONTHS or word in _ORDINALS:
                last = i
                seen_value = True
            elif not (tok.is_separator or word in _DATE_FILLER):
                break
            i += 1
        if seen_value and last >= first:
            spans.append((first, last))
    return spans


def redact(
    text: str,
    context: RedactionContext | None = None,
    *,
    at_ms: int = 0,
    kinds: Collection[str] = ALL_KINDS,
    partial: bool = False,
) -> tuple[Redacted, RedactionContext]:
    """Redact one utterance said at `at_ms`; returns it and the call's context after it.

    `partial` marks text still being spoken: a trailing run of digits is hidden too, since it
    may be the start of a card number that Luhn cannot check yet.
    """
    context = context or RedactionContext()
    tokens = _tokens(text)
    found: list[tuple[RedactionKind, int, int]] = []  # kind, first token, last token
    card_open = context.card_open(at_ms)
    card_seen = False
    ssn_mentioned = bool(_SSN_WORDS.search(text))

    for first, last in _runs(tokens):
        elements = _elements(tokens, first, last)
        if not elements:
            continue
        pieces: list[list[_Element]] = []
        rest = elements
        while rest:
            card = _find_card(rest)
            if card is None:
                pieces.append(rest)
                break
            i, j = card
            if i:
                pieces.append(rest[:i])
            found.append(("card", rest[i].first, rest[j - 1].last))
            card_seen = card_open = True
            rest = rest[j:]
        for piece in pieces:
            if not piece:
                continue
            # After a card, its expiry and CVV may follow in one breath: split them.
            groups = _split_after_card(piece) if card_open else [piece]
            for group in groups:
                verdict = _classify(
                    tokens,
                    group,
                    card_open=card_open,
                    ssn_mentioned=ssn_mentioned,
                    at_end=group[-1].last == last
                    and all(t.is_separator for t in tokens[last + 1 :]),
                    partial=partial,
                )
                if verdict is not None:
                    found.append((verdict[0], group[0].first, group[-1].last))

    for first, last in _dob_spans(text, tokens):
        found.append(("dob", first, last))

    spans = [(kind, tokens[a].start, tokens[b].end) for kind, a, b in found]
    spans.extend(("email", m.start(), m.end()) for m in _EMAIL.finditer(text))
    spans.extend(("email", m.start(), m.end()) for m in _SPOKEN_EMAIL.finditer(text))
    # A month named right after an expiry keyword belongs to the expiry.
    if card_open:
        spans.extend(_month_expiry(tokens))
    if PHI_ONLY_KINDS & set(kinds):
        spans.extend(find_phi(text))

    merged = _merge(text, [s for s in spans if s[0] in kinds])
    out = _apply(text, merged)

    after = context
    if card_seen:
        after = replace(after, card_until_ms=at_ms + CARD_WINDOW_MS)
    if card_seen or _PAYMENT.search(text):
        after = replace(after, payment_until_ms=at_ms + PAYMENT_WINDOW_MS)
    return out, after


def may_redact(text: str) -> bool:
    """Whether `redact` could find anything in `text` in any context, with any kinds: a cheap
    superset test (a number, a month or ordinal, an e-mail, a health term). Speech recognition
    uses it to skip word timing for text that can hold no redacted span."""
    for token in _tokens(text):
        if token.is_numeric or token.lower in _MONTHS or token.lower in _ORDINALS:
            return True
    if _EMAIL.search(text) or _SPOKEN_EMAIL.search(text):
        return True
    return bool(find_phi(text))


def _split_after_card(piece: list[_Element]) -> list[list[_Element]]:
    """ "12 26 123" after a card: an expiry (MM YY) and a CVV, not one number."""
    digits = "".join(e.digits for e in piece)
    if len(digits) <= 4 or len(piece) < 2:
        return [piece]
    head_len = 0
    for k, element in enumerate(piece):
        head_len += len(element.digits)
        if head_len == 4 and 1 <= int(digits[:2]) <= 12:
            return [piece[: k + 1], piece[k + 1 :]]
        if head_len > 4:
            break
    return [piece]


def _month_expiry(tokens: list[_Token]) -> Iterable[tuple[RedactionKind, int, int]]:
    for i, tok in enumerate(tokens):
        if tok.lower in _MONTHS and tok.lower != "may":
            nxt = _next_numeric(tokens, i + 1, len(tokens) - 1)
            if nxt is not None and tokens[nxt].is_numeric:
                yield "expiry", tok.start, tok.end


def _merge(text: str, spans: list[tuple[RedactionKind, int, int]]) -> list[RedactedSpan]:
    """Sorted, overlaps joined (the first kind found for a place wins), and neighbours of one
    kind with only spaces or separators between them made one span."""
    out: list[RedactedSpan] = []
    for kind, start, end in sorted(spans, key=lambda s: (s[1], -s[2])):
        joins = out and kind == out[-1].kind and _GLUE.fullmatch(text[out[-1].end : start])
        if out and (start < out[-1].end or joins):
            last = out[-1]
            out[-1] = RedactedSpan(last.kind, last.start, max(last.end, end))
            continue
        out.append(RedactedSpan(kind, start, end))
    return out


def _apply(text: str, spans: list[RedactedSpan]) -> Redacted:
    parts: list[str] = []
    cursor = 0
    for span in spans:
        parts.append(text[cursor : span.start])
        parts.append(PLACEHOLDERS[span.kind])
        cursor = span.end
    parts.append(text[cursor:])
    return Redacted(text="".join(parts), spans=tuple(spans))
