"""Zone agreement as matching evidence: tables, and a call that only the caller's zone can
place with the right one of a number's holders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loopline.journey.service import JourneyService, PoolSetup
from loopline.journey.session import StoredTouch
from loopline.journey.store import MemoryJourneyStore, PoolSpec
from loopline.journey.zones import zone_of_region, zone_of_state, zone_of_tz, zone_weight


@pytest.mark.parametrize(
    ("tz", "zone"),
    [
        ("America/Chicago", "CT"),
        ("America/Indiana/Knox", "CT"),
        ("America/Phoenix", "MT"),
        ("America/Toronto", "ET"),
        ("Pacific/Honolulu", "HT"),
        ("Europe/London", None),
        ("", None),
        (None, None),
    ],
)
def test_zone_of_tz(tz: str | None, zone: str | None) -> None:
    assert zone_of_tz(tz) == zone


@pytest.mark.parametrize(
    ("region", "zone"),
    [("CT", "CT"), ("America/Detroit", "ET"), ("Europe/London", None), ("", None), ("XX", None)],
)
def test_zone_of_region(region: str, zone: str | None) -> None:
    assert zone_of_region(region) == zone


@pytest.mark.parametrize(
    ("state", "zone"), [("TX", "CT"), ("ca", "PT"), ("DC", "ET"), ("AB", "MT"), ("XX", None)]
)
def test_zone_of_state(state: str, zone: str | None) -> None:
    assert zone_of_state(state) == zone


@pytest.mark.parametrize(
    ("caller", "visitor", "weight"),
    [
        ("PT", "PT", 0.8 / 0.16),  # agreement is rare by chance in a small zone: strong
        ("ET", "ET", 0.8 / 0.47),
        ("ET", "PT", 0.2 / 0.84),
        (None, "PT", 1.0),  # no evidence either way
        ("PT", None, 1.0),
    ],
)
def test_zone_weight(caller: str | None, visitor: str | None, weight: float) -> None:
    assert zone_weight(caller, visitor) == pytest.approx(weight)


@pytest.mark.parametrize(
    ("caller_zone", "expected"),
    [("PT", ("s-west", "last_holder")), ("ET", ("s-east", "active")), (None, ("s-east", "active"))],
)
async def test_caller_zone_picks_between_holders(
    caller_zone: str | None, expected: tuple[str, str]
) -> None:
    number = "+15005550101"
    service = JourneyService(
        MemoryJourneyStore(),
        pools=[PoolSetup(PoolSpec("p", [number], idle_hold_s=60))],
        caller_zone=lambda _: caller_zone,
    )
    t0 = datetime(2026, 5, 1, 15, tzinfo=UTC)
    for session, tz, at in [
        ("s-west", "America/Los_Angeles", t0),
        ("s-east", "America/New_York", t0 + timedelta(seconds=100)),
    ]:
        touch = StoredTouch(at=at, kind="pageview", url="https://x.example/", tz=tz)
        answer = await service.record(session, session, [touch], None, None, at, region=tz)
        assert answer.number == number
    # The west visitor left 100 s ago; the east one is reading now. Timing alone says east.
    found = await service.match(number, t0 + timedelta(seconds=110), "+14155550100")
    # The leases keep zone codes (what zone-diverse reuse compares), not the browser's names.
    regions = [h.region for h in await service.store.holdings("p", number)]
    await service.close()
    assert regions == ["ET", "PT"]
    assert found is not None
    assert (found.session_id, found.confidence) == expected
