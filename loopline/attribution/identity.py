"""Contact details normalised and SHA-256 hashed as each ad platform specifies. Pure.

Google (Data Manager API): email trimmed and lowercased, and for gmail.com / googlemail.com
addresses the dots and any `+tag` of the local part removed; phone in E.164 with its `+`;
SHA-256, hex encoded.

Meta (Conversions API): email trimmed and lowercased; phone as digits only with the country
code and no leading zeros (E.164 without its `+`); SHA-256, lowercase hex. `fbc` and `fbp` are
sent as they are, never hashed.

A phone number written without a country code is read in `default_region` first, which the
platforms' own helpers cannot do: they take the digits as given.
"""

from __future__ import annotations

import hashlib
import re

import phonenumbers

_WHITESPACE = re.compile(r"\s")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def e164(raw: str | None, default_region: str = "US") -> str | None:
    """The number in E.164 (`+14155550100`), or None when it is not a possible number."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    # "00" is the international prefix almost everywhere; phonenumbers wants "+".
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def google_email(raw: str | None) -> str | None:
    if raw is None:
        return None
    email = raw.strip()
    if not email or _WHITESPACE.search(email):
        return None
    email = email.lower()
    user, at, domain = email.partition("@")
    if not at or not user or not domain or "@" in domain:
        return None
    if domain in ("gmail.com", "googlemail.com"):
        user = user.split("+", 1)[0].replace(".", "")
        if not user:
            return None
    return f"{user}@{domain}"


def meta_email(raw: str | None) -> str | None:
    if raw is None:
        return None
    email = raw.strip().lower()
    user, at, domain = email.partition("@")
    if not at or not user or "." not in domain:
        return None
    return email


def google_phone(raw: str | None, default_region: str = "US") -> str | None:
    return e164(raw, default_region)


def meta_phone(raw: str | None, default_region: str = "US") -> str | None:
    number = e164(raw, default_region)
    return number[1:] if number else None


def hashed(normalised: str | None) -> str | None:
    """SHA-256 hex of a normalised value; a value that is already a SHA-256 hex passes."""
    if normalised is None:
        return None
    if _SHA256_HEX.match(normalised):
        return normalised
    return sha256_hex(normalised)
