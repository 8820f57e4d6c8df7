"""Caller normalisation, as tables of what providers send and what routing should see."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import geocoder

from loopline.domain.calls import Caller
from loopline.providers.nanp_regions import AREA_CODE_REGIONS
from loopline.providers.phone import clean_raw, is_withheld, normalize_caller


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Twilio's usual E.164, US and Canada: region from the area code.
        ("+14155552671", Caller(number="+14155552671", valid=True, country="US", region="CA")),
        ("+12125551234", Caller(number="+12125551234", valid=True, country="US", region="NY")),
        ("+12025550143", Caller(number="+12025550143", valid=True, country="US", region="DC")),
        ("+16135550123", Caller(number="+16135550123", valid=True, country="CA", region="ON")),
        ("+15145550199", Caller(number="+15145550199", valid=True, country="CA", region="QC")),
        # National formats are read in the default region.
        ("(415) 555-2671", Caller(number="+14155552671", valid=True, country="US", region="CA")),
        (" 415.555.2671 ", Caller(number="+14155552671", valid=True, country="US", region="CA")),
        # Other countries: country, no region.
        ("+442079460958", Caller(number="+442079460958", valid=True, country="GB")),
        ("+33 1 42 68 53 00", Caller(number="+33142685300", valid=True, country="FR")),
        # NANP but not US/CA: the country is the territory, no state.
        ("+17875550000", Caller(number="+17875550000", valid=True, country="PR")),
        # Shared Canadian area code: no single province is true.
        ("+19025550123", Caller(number="+19025550123", valid=True, country="CA")),
        # Toll-free: valid, US, no region.
        ("+18005550000", Caller(number="+18005550000", valid=True, country="US")),
        # Possible but not valid (no area code 200): E.164, not valid, no country.
        ("+12005550100", Caller(number="+12005550100", valid=False)),
        # Withheld numbers, in words and in Twilio's keypad spellings.
        ("anonymous", Caller(number="anonymous")),
        ("Restricted", Caller(number="Restricted")),
        ("+266696687", Caller(number="+266696687")),
        ("+7378742833", Caller(number="+7378742833")),
        ("+2562533", Caller(number="+2562533")),
        ("+8656696", Caller(number="+8656696")),
        ("+86282452253", Caller(number="+86282452253")),
        # Not numbers at all: kept, cleaned.
        ("client:alice", Caller(number="client:alice")),
        ("sip:bob@example.com", Caller(number="sip:bob@example.com")),
        ("+1555", Caller(number="+1555")),
        ("", Caller(number="")),
        ("  garbage\x00\n here ", Caller(number="garbage here")),
        ("x" * 100, Caller(number="x" * 64)),
    ],
)
def test_normalize_caller(raw: str, expected: Caller) -> None:
    assert normalize_caller(raw) == expected


@pytest.mark.parametrize(
    ("raw", "default_region", "number", "country"),
    [
        ("020 7946 0958", "GB", "+442079460958", "GB"),
        ("01 42 68 53 00", "FR", "+33142685300", "FR"),
        ("020 7946 0958", "US", "020 7946 0958", None),
    ],
)
def test_default_region_reads_national_numbers(
    raw: str, default_region: str, number: str, country: str | None
) -> None:
    caller = normalize_caller(raw, default_region=default_region)
    assert (caller.number, caller.country) == (number, country)


@pytest.mark.parametrize(
    ("raw", "provider_state", "region"),
    [
        ("+14155552671", "CA", "CA"),
        # The provider knows better (ported numbers): its state wins over the area code.
        ("+14155552671", "nv", "NV"),
        ("+14155552671", "  ", "CA"),
        ("+14155552671", None, "CA"),
        ("+442079460958", "London", "London"),
        ("anonymous", "TX", "TX"),
    ],
)
def test_provider_state_comes_first(raw: str, provider_state: str | None, region: str) -> None:
    assert normalize_caller(raw, provider_state=provider_state).region == region


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ALICE SMITH", "ALICE SMITH"), ("  Bob\t ", "Bob"), ("", None), (None, None)],
)
def test_name_is_cleaned(name: str | None, expected: str | None) -> None:
    assert normalize_caller("+14155552671", name=name).name == expected


@pytest.mark.parametrize(
    ("raw", "withheld"),
    [
        ("anonymous", True),
        ("ANONYMOUS", True),
        (" private ", True),
        ("+266696687", True),
        ("+14155552671", False),
        ("client:alice", False),
    ],
)
def test_is_withheld(raw: str, withheld: bool) -> None:
    assert is_withheld(raw) is withheld


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [("a\u200bb", "ab"), ("a \t\r\n b", "a b"), ("\x1b[31mred", "[31mred"), ("é", "é")],
)
def test_clean_raw(raw: str, cleaned: str) -> None:
    assert clean_raw(raw) == cleaned


# phonenumbers' geocoder names the state (or "City, ST") of a number; it is our oracle for the
# area-code table in both directions.
_STATE_NAMES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Washington D.C.": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ",
    "New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND",
    "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington State": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Alberta": "AB", "British Columbia": "BC", "British Colombia": "BC", "Manitoba": "MB",
    "New Brunswick": "NB", "Newfoundland and Labrador": "NL", "Ontario": "ON",
    "Quebec": "QC", "Saskatchewan": "SK",
}  # fmt: skip
# Codes shared by several provinces or territories: deliberately absent from our table.
_SHARED = {"782", "867", "902"}


def _geocoded_regions(area_code: str) -> set[str] | None:
    """The regions the geocoder gives for a few valid numbers of `area_code`, None if it
    knows no valid US/CA number there."""
    regions: set[str] = set()
    known = False
    for exchange in ("234", "555", "201", "300", "456", "789"):
        number = phonenumbers.parse(f"+1{area_code}{exchange}0123")
        if not phonenumbers.is_valid_number(number):
            continue
        if phonenumbers.region_code_for_number(number) not in ("US", "CA"):
            return None
        known = True
        place = geocoder.description_for_number(number, "en")
        if place in _STATE_NAMES:
            regions.add(_STATE_NAMES[place])
        elif ", " in place:
            regions.add(place.rsplit(", ", 1)[1])
        elif len(place) == 2:
            regions.add(place)
    return regions if known else None


def test_area_code_table_agrees_with_phonenumbers() -> None:
    disagreements: dict[str, tuple[str | None, set[str]]] = {}
    for code in range(200, 1000):
        area_code = str(code)
        regions = _geocoded_regions(area_code)
        ours = AREA_CODE_REGIONS.get(area_code)
        if regions is None or area_code in _SHARED:
            continue
        if not regions:  # non-geographic (toll-free, 500s, Canada's 600)
            if ours is not None:
                disagreements[area_code] = (ours, regions)
            continue
        if {ours} != regions:
            disagreements[area_code] = (ours, regions)
    assert disagreements == {}


def test_area_code_table_is_well_formed() -> None:
    assert len(AREA_CODE_REGIONS) > 350
    assert all(len(code) == 3 and code.isdigit() for code in AREA_CODE_REGIONS)
    assert not _SHARED & set(AREA_CODE_REGIONS)
