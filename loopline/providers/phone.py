"""Caller normalisation: whatever a provider sent as `From`, turned into a `Caller`. Pure."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from loopline.domain.calls import Caller
from loopline.providers.nanp_regions import CANADIAN_REGIONS, region_for_area_code

# Words providers put in `From` when the caller withheld their number.
_WITHHELD_WORDS = frozenset(
    {"anonymous", "restricted", "private", "unknown", "unavailable", "blocked", "withheld"}
)
# Twilio spells the same words on a keypad (ANONYMOUS = 266696687, ...) and sends them as
# numbers; some of these even parse as real numbers elsewhere (+7 378... looks Kazakh).
_WITHHELD_NUMBERS = frozenset({"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"})
# Long enough for any E.164 number with an extension or a SIP address; a longer `From` is junk
# and would only bloat keys and logs.
_MAX_KEPT = 64
_SPACES = re.compile(r"\s+")


def clean_raw(raw: str) -> str:
    """`raw` without control characters, with runs of whitespace as one space, at most 64 chars."""
    printable = "".join(
        ch for ch in raw if ch.isspace() or not unicodedata.category(ch).startswith("C")
    )
    return _SPACES.sub(" ", printable).strip()[:_MAX_KEPT]


def is_withheld(raw: str) -> bool:
    """Whether `raw` is a provider's way of saying the caller hid their number."""
    cleaned = clean_raw(raw)
    compact = cleaned.replace(" ", "")
    return cleaned.lower() in _WITHHELD_WORDS or compact in _WITHHELD_NUMBERS


def normalize_caller(
    raw: str,
    *,
    default_region: str = "US",
    name: str | None = None,
    provider_state: str | None = None,
) -> Caller:
    """Turn a provider's `From` into a `Caller`.

    `number` is E.164 when `phonenumbers` finds a possible number, the cleaned input otherwise;
    `valid` is `phonenumbers`' full validity check. `country` (ISO 3166 alpha-2) is set for
    valid numbers only. `region` prefers what the provider reported (Twilio's `FromState`) and
    otherwise comes from the area code of a valid US or Canadian number.
    """
    cleaned = clean_raw(raw)
    caller_name = _clean_optional(name)
    reported_region = _clean_region(provider_state)
    if not cleaned or is_withheld(cleaned):
        return Caller(number=cleaned, valid=False, region=reported_region, name=caller_name)
    try:
        parsed = phonenumbers.parse(cleaned, default_region)
    except phonenumbers.NumberParseException:
        return Caller(number=cleaned, valid=False, region=reported_region, name=caller_name)
    if not phonenumbers.is_possible_number(parsed):
        return Caller(number=cleaned, valid=False, region=reported_region, name=caller_name)

    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    valid = bool(phonenumbers.is_valid_number(parsed))
    country = phonenumbers.region_code_for_number(parsed) if valid else None
    region = reported_region or _region_from_number(e164, country)
    return Caller(number=e164, valid=valid, country=country, region=region, name=caller_name)


def _region_from_number(e164: str, country: str | None) -> str | None:
    if country not in ("US", "CA"):
        return None
    region = region_for_area_code(e164[2:5])
    # A mismatch means our table and phonenumbers disagree on the country; trust neither.
    if region is None or (region in CANADIAN_REGIONS) != (country == "CA"):
        return None
    return region


def _clean_optional(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = clean_raw(value)
    return cleaned or None


def _clean_region(value: str | None) -> str | None:
    cleaned = _clean_optional(value)
    if cleaned is None:
        return None
    # Twilio sends state codes ("CA") for North America but place names elsewhere; only
    # codes are normalised, names are kept as given.
    return cleaned.upper() if len(cleaned) <= 3 and cleaned.isalpha() else cleaned
