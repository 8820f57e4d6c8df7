"""How well a pool of a given size will attribute calls, and what size reaches a target.

A least-recently-released pool hands a number back out about `free / lease rate` seconds after
its holder let go (the cycle). A call made during the visit, or after it within the cycle,
reaches its own session; a later one reaches whoever holds the number next. So the expected
match rate is `during + (1 - during) * P(delay < cycle)`, with the delay model of `CallTiming`.
bench/bench_journey_attribution checks this estimate against the simulation.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from loopline.journey.matching import CallTiming

_NORMAL = NormalDist()


def delay_cdf(timing: CallTiming, delay_s: float) -> float:
    if delay_s <= 0:
        return 0.0
    z = (math.log(delay_s) - math.log(timing.delay_median_s)) / timing.delay_sigma
    return _NORMAL.cdf(z)


def expected_match_rate(
    size: int, lease_rate_per_s: float, mean_hold_s: float, timing: CallTiming
) -> float:
    """Share of calls expected to reach their own session at a steady lease rate."""
    if size <= 0:
        return 0.0
    if lease_rate_per_s <= 0:
        return 1.0
    in_use = lease_rate_per_s * mean_hold_s
    free = size - in_use
    if free <= 0:
        # Every number is held: late visitors get the fallback and cannot be matched at all.
        return max(0.0, size / in_use) * timing.during_share
    cycle = free / lease_rate_per_s
    return timing.during_share + (1 - timing.during_share) * delay_cdf(timing, cycle)


def recommended_size(
    lease_rate_per_s: float, mean_hold_s: float, timing: CallTiming, target: float = 0.95
) -> int:
    """The smallest pool expected to match `target` of calls at this lease rate."""
    if lease_rate_per_s <= 0:
        return 1
    if not 0 < target < 1:
        raise ValueError("target must be between 0 and 1")
    need = (target - timing.during_share) / (1 - timing.during_share)
    if need <= 0:
        cycle = 0.0
    else:
        z = _NORMAL.inv_cdf(min(need, 0.999999))
        cycle = timing.delay_median_s * math.exp(z * timing.delay_sigma)
    return max(1, math.ceil(lease_rate_per_s * (mean_hold_s + cycle)))
