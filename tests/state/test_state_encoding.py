"""The pure encodings the stores share: epoch ms, queue scores, event ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from loopline.state.encoding import (
    caller_key,
    expiry_ms,
    from_ms,
    parse_event_id,
    queue_score,
    to_ms,
    ttl_ms,
)

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "ms"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (T0, 1_767_625_200_000),
        (T0 + timedelta(microseconds=999), 1_767_625_200_000),  # rounded down
        (T0 + timedelta(milliseconds=1), 1_767_625_200_001),
        (datetime(2026, 1, 5, 16, 0, tzinfo=timezone(timedelta(hours=1))), 1_767_625_200_000),
        (datetime(2026, 1, 5, 15, 0), 1_767_625_200_000),  # naive is UTC
    ],
)
def test_to_ms(at: datetime, ms: int) -> None:
    assert to_ms(at) == ms


@pytest.mark.parametrize("ms", [0, 1, 1_767_625_200_123, 9_999_999_999_999])
def test_ms_round_trip(ms: int) -> None:
    assert to_ms(from_ms(ms)) == ms
    assert from_ms(ms).tzinfo is UTC


@pytest.mark.parametrize(
    ("ttl_s", "ms"),
    [(20, 1_767_625_220_000), (0.0015, 1_767_625_200_001), (0.0001, 1_767_625_200_000)],
)
def test_expiry_ms(ttl_s: float, ms: int) -> None:
    assert expiry_ms(T0, ttl_s) == ms


@pytest.mark.parametrize(("ttl_s", "ms"), [(1, 1000), (0.0001, 1), (2.5, 2500)])
def test_ttl_ms(ttl_s: float, ms: int) -> None:
    assert ttl_ms(ttl_s) == ms


@pytest.mark.parametrize("bad", [0, -1, float("nan")])
def test_ttls_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        ttl_ms(bad)
    with pytest.raises(ValueError):
        expiry_ms(T0, bad)


# (a, b): a is served before b. Each is (priority, seconds after T0).
SERVED_FIRST = [
    ((1, 100), (0, 0)),
    ((0, 0), (0, 1)),
    ((0, 0.001), (0, 0.002)),
    ((100, 9_000_000), (99, 0)),
    ((800, 0), (-800, 0)),
    ((0, 0), (-1, -1_000_000)),
]


@pytest.mark.parametrize(("a", "b"), SERVED_FIRST)
def test_queue_score_orders_priority_then_time(a: tuple[int, float], b: tuple[int, float]) -> None:
    score_a = queue_score(a[0], T0 + timedelta(seconds=a[1]))
    score_b = queue_score(b[0], T0 + timedelta(seconds=b[1]))
    assert score_a < score_b
    assert abs(score_a) < 2**53 and abs(score_b) < 2**53  # exact as a Redis double


@pytest.mark.parametrize(
    ("priority", "at"),
    [
        (801, T0),
        (-801, T0),
        (0, datetime(1969, 12, 31, tzinfo=UTC)),
        (0, datetime(2290, 1, 1, tzinfo=UTC)),
    ],
)
def test_queue_score_refuses_what_a_double_cannot_hold(priority: int, at: datetime) -> None:
    with pytest.raises(ValueError):
        queue_score(priority, at)


@pytest.mark.parametrize(
    ("event_id", "parsed"),
    [("1-0", (1, 0)), ("17", (17, 0)), ("1767625200000-3", (1_767_625_200_000, 3)), ("0", (0, 0))],
)
def test_parse_event_id(event_id: str, parsed: tuple[int, int]) -> None:
    assert parse_event_id(event_id) == parsed


@pytest.mark.parametrize("bad", ["", "x", "1-", "-1", "1-x", "a-1", "$"])
def test_parse_event_id_refuses_other_text(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_event_id(bad)


def test_caller_key_hides_the_number_and_is_stable() -> None:
    key = caller_key("+15551230000")
    assert key == caller_key("+15551230000") != caller_key("+15551230001")
    assert "5551230000" not in key and len(key) == 32
