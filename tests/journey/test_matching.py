"""Matching a call to a number's holders, and the pool sizing estimate: tables of cases."""

from __future__ import annotations

import pytest

from loopline.journey.matching import CallTiming, match_holdings, match_likely
from loopline.journey.pool import Holding
from loopline.journey.sizing import delay_cdf, expected_match_rate, recommended_size


def h(session: str, start: float, seen: float, expires: float, region: str = "") -> Holding:
    return Holding("+15005550001", session, "v-" + session, start, seen, expires, region)


# newest first, as the stores hand them over
B_ACTIVE = h("b", 1000, 1100, 1280)
A_PAST = h("a", 100, 400, 580)
OLD = h("old", 0, 50, 80)


@pytest.mark.parametrize(
    ("holdings", "at", "limit", "session", "confidence", "since"),
    [
        ([B_ACTIVE, A_PAST], 1050, None, "b", "active", 0.0),
        ([B_ACTIVE, A_PAST], 900, None, "a", "last_holder", 320.0),  # b took it after the call
        ([A_PAST, OLD], 700, None, "a", "last_holder", 120.0),
        ([A_PAST], 700, 60.0, None, "none", None),  # too stale for this deployment
        ([A_PAST], 50, None, None, "none", None),  # nobody held it before the call
        ([], 700, None, None, "none", None),
    ],
)
def test_match_holdings(holdings, at, limit, session, confidence, since) -> None:  # type: ignore[no-untyped-def]
    found = match_holdings(holdings, at, max_since_s=limit)
    assert (found.holding.session_id if found.holding else None) == session
    assert found.confidence == confidence
    assert found.since_s == since


TIMING = CallTiming(during_share=0.4, visit_mean_s=250, delay_median_s=300, delay_sigma=1.2)


@pytest.mark.parametrize(
    ("holdings", "at", "weights", "session", "confidence"),
    [
        ([B_ACTIVE, A_PAST], 1050, None, "b", "active"),
        # a strong counter-signal (caller's region is the older holder's) flips it
        ([B_ACTIVE, A_PAST], 1050, [0.1, 10.0], "a", "last_holder"),
        ([A_PAST, OLD], 700, None, "a", "last_holder"),
        ([h("late", 2000, 2000, 2180)], 1500, None, None, "none"),
    ],
)
def test_match_likely(holdings, at, weights, session, confidence) -> None:  # type: ignore[no-untyped-def]
    found = match_likely(holdings, at, TIMING, weights=weights)
    assert (found.holding.session_id if found.holding else None) == session
    assert found.confidence == confidence


@pytest.mark.parametrize(("delay", "cdf"), [(0, 0.0), (300, 0.5), (1e9, 1.0)])
def test_delay_cdf(delay: float, cdf: float) -> None:
    assert delay_cdf(TIMING, delay) == pytest.approx(cdf, abs=1e-6)


def test_bigger_pools_match_more_and_recommended_size_reaches_target() -> None:
    rate, hold = 0.3, 430.0
    rates = [expected_match_rate(n, rate, hold, TIMING) for n in (150, 400, 1000, 3000)]
    assert rates == sorted(rates)
    size = recommended_size(rate, hold, TIMING, target=0.95)
    assert expected_match_rate(size, rate, hold, TIMING) >= 0.95
    assert expected_match_rate(size - 5, rate, hold, TIMING) < 0.95
    assert expected_match_rate(10, 0.0, hold, TIMING) == 1.0
