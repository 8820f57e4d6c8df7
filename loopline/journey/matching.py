"""Which session a call belongs to, from the dialed number's holders and the call time.

Pure: the lease stores hand over a number's holdings (current first, then past, newest first)
and this decides. The rule the attribution simulation supports: the session holding the number
when the phone rang (`active`), else the number's most recent holder before the call
(`last_holder`, with the time since it let go). A call on a source-level number that no session
held matches its campaign only (`source_only`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from loopline.journey.pool import Holding

Confidence = Literal["active", "last_holder", "source_only", "none"]


@dataclass(frozen=True, slots=True)
class LeaseMatch:
    holding: Holding | None
    confidence: Confidence
    since_s: float | None = None  # last_holder: seconds between letting go and the call


NO_MATCH = LeaseMatch(None, "none")


def match_holdings(
    holdings: Sequence[Holding], at: float, *, max_since_s: float | None = None
) -> LeaseMatch:
    """The holder a call at `at` most likely came from. `max_since_s` (None: no limit) drops a
    last holder that let go longer ago than that, for deployments that prefer no answer to a
    stale one."""
    for holding in holdings:
        if holding.start > at:
            continue  # took the number after the call rang (a late look-up)
        if holding.active_at(at):
            return LeaseMatch(holding, "active", 0.0)
        since = at - holding.expires
        if max_since_s is not None and since > max_since_s:
            return NO_MATCH
        return LeaseMatch(holding, "last_holder", since)
    return NO_MATCH


@dataclass(frozen=True, slots=True)
class CallTiming:
    """When callers phone relative to their visit: the basis of likelihood matching.

    `during_share` of calls come while the visit is active, the rest after it, with a log-normal
    delay (`delay_median_s`, `delay_sigma`) from the visit's last sign of life. `visit_mean_s`
    turns the in-visit share into a rate per second.
    """

    during_share: float = 0.4
    visit_mean_s: float = 250.0
    delay_median_s: float = 300.0
    delay_sigma: float = 1.2
    heartbeat_s: float = 60.0

    def likelihood(self, holding: Holding, at: float) -> float:
        """Relative chance that a call at `at` came from this holder (rate per second)."""
        if holding.start > at:
            return 0.0
        since_seen = at - holding.last_seen
        rate = 0.0
        if since_seen <= self.heartbeat_s:
            # Still reading (a heartbeat is due at most every `heartbeat_s`).
            rate += self.during_share / self.visit_mean_s
        rate += (1 - self.during_share) * _lognormal_pdf(
            max(since_seen, 1.0), self.delay_median_s, self.delay_sigma
        )
        return rate


def _lognormal_pdf(x: float, median: float, sigma: float) -> float:
    z = (math.log(x) - math.log(median)) / sigma
    return math.exp(-0.5 * z * z) / (x * sigma * math.sqrt(2 * math.pi))


def match_likely(
    holdings: Sequence[Holding],
    at: float,
    timing: CallTiming,
    *,
    weights: Sequence[float] | None = None,
) -> LeaseMatch:
    """The holder with the highest likelihood of having made a call at `at`.

    `weights` (one per holding, default 1) multiply in other evidence, such as the caller's
    number region agreeing with the visitor's time zone. The confidence still says how the
    chosen holder stood at `at`: active, or last holder with the time since it let go.
    """
    best: Holding | None = None
    best_score = 0.0
    for i, holding in enumerate(holdings):
        score = timing.likelihood(holding, at) * (weights[i] if weights is not None else 1.0)
        if score > best_score:
            best, best_score = holding, score
    if best is None:
        return NO_MATCH
    if best.active_at(at):
        return LeaseMatch(best, "active", 0.0)
    return LeaseMatch(best, "last_holder", at - best.expires)
