"""PoolCore: leasing, renewal, reclaim and reuse order, driven by explicit times."""

from __future__ import annotations

import pytest

from loopline.journey.pool import PoolCore

N = ["+15005550001", "+15005550002", "+15005550003"]


def test_grants_in_configured_order_then_falls_back_and_counts() -> None:
    pool = PoolCore(N, idle_hold_s=100)
    got = [pool.acquire(f"s{i}", f"v{i}", 10.0).number for i in range(4)]
    assert got == [*N, None]
    assert pool.fallbacks == 1
    assert pool.use(10.0).in_use == 3


def test_one_visitor_holds_one_number_across_sessions() -> None:
    pool = PoolCore(N, idle_hold_s=100)
    first = pool.acquire("s1", "v1", 0.0)
    again = pool.acquire("s1", "v1", 50.0)
    new_visit = pool.acquire("s2", "v1", 60.0)
    assert first.kind == "granted" and again.kind == new_visit.kind == "renewed"
    assert first.number == again.number == new_visit.number
    assert pool.in_use == 1
    # The earlier visit is history, ended when the new one began.
    current, past = pool.holdings(N[0])
    assert (current.session_id, past.session_id, past.expires) == ("s2", "s1", 60.0)


@pytest.mark.parametrize(
    ("beats", "at", "held"),
    [
        ([], 99.0, True),  # within the idle hold
        ([], 100.0, False),  # the hold ran out exactly now
        ([90.0], 189.0, True),  # a heartbeat carried it
        ([90.0], 190.0, False),
    ],
)
def test_heartbeats_keep_a_lease(beats: list[float], at: float, held: bool) -> None:
    pool = PoolCore(N, idle_hold_s=100)
    pool.acquire("s1", "v1", 0.0)
    for beat in beats:
        assert pool.heartbeat("s1", "v1", beat) is not None
    assert (pool.use(at).in_use == 1) is held


def test_heartbeat_from_another_session_or_after_expiry_is_refused() -> None:
    pool = PoolCore(N, idle_hold_s=100)
    pool.acquire("s1", "v1", 0.0)
    assert pool.heartbeat("s-other", "v1", 10.0) is None
    assert pool.heartbeat("s1", "v1", 150.0) is None


def test_reuse_takes_the_least_recently_released_number() -> None:
    pool = PoolCore(N, idle_hold_s=10)
    for i, at in enumerate([0.0, 5.0, 2.0]):  # leases expire at 10, 15, 12
        pool.acquire(f"s{i}", f"v{i}", at)
    # All three are free at 20; released at 10 (N0), 12 (N2), 15 (N1).
    order = [pool.acquire(f"t{i}", f"w{i}", 20.0).number for i in range(3)]
    assert order == [N[0], N[2], N[1]]


def test_spent_number_is_reused_first() -> None:
    pool = PoolCore(N, idle_hold_s=10)
    for i in range(3):
        pool.acquire(f"s{i}", f"v{i}", float(i))
    pool.reclaim(100.0)
    assert pool.mark_spent(N[2]) is True
    assert pool.acquire("x", "vx", 101.0).number == N[2]
    assert pool.mark_spent(N[2]) is False  # held now


N4 = [*N, "+15005550004"]


@pytest.mark.parametrize(
    ("past", "region", "window", "spent", "expected"),
    [
        # Last holders of N4[0..3], released in that order; the new visitor's zone.
        (["ET", "CT", "ET", "PT"], "ET", 8, None, 1),  # oldest with a holder elsewhere
        (["ET", "CT", "ET", "PT"], "CT", 8, None, 0),  # the oldest already differs
        (["ET", "CT", "ET", "PT"], "", 8, None, 0),  # zone unknown: plain LRR
        (["ET", "CT", "ET", "PT"], "ET", 1, None, 0),  # window 1: plain LRR
        (["ET", "ET", "CT", "PT"], "ET", 2, None, 0),  # none in the window differs: oldest
        (["ET", "ET", "CT", "PT"], "ET", 3, None, 2),
        (["ET", "", "CT", "PT"], "ET", 8, None, 2),  # a holder of unknown zone tells nothing
        (["ET", "ET", "ET", "ET"], "ET", 8, None, 0),
        (["ET", "CT", "ET", "PT"], "ET", 8, 2, 2),  # a spent number still goes first
    ],
)
def test_zone_diverse_reuse(
    past: list[str], region: str, window: int, spent: int | None, expected: int
) -> None:
    pool = PoolCore(N4, idle_hold_s=10, zone_window=window)
    for i, zone in enumerate(past):
        assert pool.acquire(f"s{i}", f"v{i}", float(i), zone).number == N4[i]
    pool.reclaim(50.0)  # released at 10, 11, 12, 13
    if spent is not None:
        assert pool.mark_spent(N4[spent])
    grant = pool.acquire("new", "v-new", 50.0, region)
    assert grant.number == N4[expected]
    assert grant.holding is not None and grant.holding.region == region
    # The chosen number left the free queue, the others keep their order.
    rest = [pool.acquire(f"t{i}", f"w{i}", 50.0).number for i in range(3)]
    assert rest == [n for n in N4 if n != N4[expected]]


def test_history_is_capped_and_newest_first() -> None:
    pool = PoolCore(N[:1], idle_hold_s=1, history=2)
    for i in range(4):
        pool.acquire(f"s{i}", f"v{i}", float(i * 10))
    assert [h.session_id for h in pool.holdings(N[0])] == ["s3", "s2", "s1"]


def test_lease_rate_tracks_recent_grants() -> None:
    pool = PoolCore([f"+1500555{i:04d}" for i in range(100)], idle_hold_s=1, rate_tau_s=3600)
    for i in range(60):
        pool.acquire(f"s{i}", f"v{i}", i * 60.0)  # one a minute for an hour
    rate = pool.use(3600.0).lease_rate_per_s
    assert 0.6 / 60 < rate < 1.0 / 60


def test_invalid_pools_are_refused() -> None:
    with pytest.raises(ValueError, match="once"):
        PoolCore([N[0], N[0]])
    with pytest.raises(ValueError, match="idle_hold_s"):
        PoolCore(N, idle_hold_s=0)
    with pytest.raises(ValueError, match="zone_window"):
        PoolCore(N, zone_window=0)
