"""Our normalisation and hashing against the platforms' own SDK functions, on awkward inputs.

Where the SDKs agree with the spec, our hashes must equal theirs. Where they differ, the row
says why: the SDKs take the digits as given, so they cannot add a missing country code, drop
an international "00" prefix (Google's helper) or a trunk "(0)".
"""

from __future__ import annotations

import pytest
from facebook_business.adobjects.serverside.normalize import Normalize  # type: ignore[import-untyped]
from google.ads.datamanager_util.format import Encoding, Formatter

from loopline.attribution.identity import (
    e164,
    google_email,
    google_phone,
    hashed,
    meta_email,
    meta_phone,
    sha256_hex,
)

GOOGLE = Formatter()

# raw, our E.164, same as Google's helper, same as Meta's SDK
PHONES = [
    ("+1 (415) 555-0100", "+14155550100", True, True),
    ("14155550100", "+14155550100", True, True),
    (" +44 20 7946 0958 ", "+442079460958", True, True),
    ("+33 1 42 68 53 00", "+33142685300", True, True),
    ("+1 415 555 0100\u00a0", "+14155550100", True, True),
    ("+1.415.555.0100", "+14155550100", True, False),  # Meta's SDK refuses the dots
    ("001 415 555 0100", "+14155550100", False, True),  # Google's helper keeps "00"
    ("0044 20 7946 0958", "+442079460958", False, True),
    ("(415) 555-0100", "+14155550100", False, False),  # no country code: read in US
    ("+49 (0)30 123456", "+4930123456", False, False),  # the trunk 0 is not dialled
]


@pytest.mark.parametrize(("raw", "expected", "as_google", "as_meta"), PHONES)
def test_phone_normalisation_against_the_sdks(
    raw: str, expected: str, as_google: bool, as_meta: bool
) -> None:
    assert e164(raw, "US") == expected
    ours_google = hashed(google_phone(raw))
    ours_meta = hashed(meta_phone(raw))
    assert ours_google == sha256_hex(expected)
    assert ours_meta == sha256_hex(expected.removeprefix("+"))
    theirs_google = GOOGLE.process_phone_number(raw, Encoding.HEX)
    assert (ours_google == theirs_google) is as_google
    try:
        theirs_meta = Normalize.normalize_field("ph", raw)
    except (ValueError, TypeError):
        theirs_meta = None
    assert (ours_meta == theirs_meta) is as_meta


@pytest.mark.parametrize("raw", ["", "   ", "not a number", "+1 415 555 01", "12"])
def test_what_is_not_a_phone_number_is_not_sent(raw: str) -> None:
    assert google_phone(raw) is None and meta_phone(raw) is None and hashed(None) is None


# raw, ours for Google, ours for Meta
EMAILS = [
    ("John.Doe@Example.COM", "john.doe@example.com", "john.doe@example.com"),
    ("  jane@example.org\t", "jane@example.org", "jane@example.org"),
    (" Foo.Bar+tag@GMail.com ", "foobar@gmail.com", "foo.bar+tag@gmail.com"),
    ("a.b.c@googlemail.com", "abc@googlemail.com", "a.b.c@googlemail.com"),
    ("user.name+NYC@Example.com", "user.name+nyc@example.com", "user.name+nyc@example.com"),
    ("ÉLODIE@exemple.fr", "élodie@exemple.fr", "élodie@exemple.fr"),
]


@pytest.mark.parametrize(("raw", "for_google", "for_meta"), EMAILS)
def test_email_normalisation_matches_the_sdks(raw: str, for_google: str, for_meta: str) -> None:
    assert google_email(raw) == for_google == GOOGLE.format_email_address(raw)
    assert hashed(google_email(raw)) == GOOGLE.process_email_address(raw, Encoding.HEX)
    assert meta_email(raw) == for_meta
    assert hashed(meta_email(raw)) == Normalize.normalize_field("em", raw)


@pytest.mark.parametrize(
    "raw", ["no-at-sign", "@example.com", "two@@example.com", "a b@example.com"]
)
def test_google_refuses_what_its_helper_refuses(raw: str) -> None:
    assert google_email(raw) is None
    with pytest.raises(ValueError):
        GOOGLE.format_email_address(raw)


def test_an_already_hashed_value_is_not_hashed_again() -> None:
    digest = sha256_hex("14155550100")
    assert hashed(digest) == digest == Normalize.normalize_field("ph", digest)
