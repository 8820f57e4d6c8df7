"""A number pool's leasing rules as plain data: who holds which number, and who held it before.

Times are epoch seconds (floats) so the attribution simulation can push a month of visitors
through the same code the memory store runs. Nothing here does I/O or reads a clock.

Reuse policy, chosen on the attribution simulation's evidence (bench/bench_journey_attribution):
a released number goes to the back of the free queue and the next visitor takes the number that
was let go longest ago (least recently released). That maximises the time between one holder
letting go and the next taking over, which is the window in which a late call still reaches
the right session. A number whose last holder has already called is "spent": it goes to the
front, since that holder is now known and no later call needs its window.

Zone-diverse reuse (`zone_window` > 1): a late call that reaches a re-leased number can only be
told apart from the new holder's by the caller's zone (`journey/zones.py`), so a visitor whose
zone is known takes, among the `zone_window` least recently released numbers, the oldest one
whose last holder was in another (known) zone or which nobody held yet; if none is, the oldest.
A spent number still goes first. `region` is compared as a plain string: callers pass a zone
code (`zones.zone_of_region`), so two browser zone names of one zone count as the same.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

GrantKind = Literal["granted", "renewed", "fallback"]
# The default zone-diverse reuse window: 1, off. Against plain LRR on the same simulated
# visitors (six seeds) windows 4 to 16 gained −0.02 to +0.14 points on average at every pool
# size (docs/journey.md): not worth the extra reads per lease by default.
ZONE_WINDOW = 1


@dataclass(frozen=True, slots=True)
class Holding:
    """One stretch of one number held by one session: from `start` until `expires` (the last
    heartbeat plus the idle hold). `expires` moves forward while the session is active."""

    number: str
    session_id: str
    visitor_id: str
    start: float
    last_seen: float
    expires: float
    region: str = ""  # the visitor's time zone, matched against the caller's number later

    def active_at(self, at: float) -> bool:
        return self.start <= at < self.expires


@dataclass(frozen=True, slots=True)
class Grant:
    kind: GrantKind
    number: str | None  # None: the pool is exhausted; the site shows the fallback number
    holding: Holding | None = None


@dataclass(frozen=True, slots=True)
class PoolUse:
    size: int
    in_use: int
    free: int
    leases: int
    renewals: int
    fallbacks: int
    lease_rate_per_s: float = 0.0  # new leases per second, averaged over about an hour


def lease_rate(rate: float, rate_at: float, now: float, tau_s: float) -> float:
    """The exponentially weighted lease rate `rate` (as of `rate_at`) decayed to `now`."""
    if now <= rate_at:
        return rate
    return rate * math.exp(-(now - rate_at) / tau_s)


@dataclass
class PoolCore:
    """One pool's live leases, free queue and per-number history (newest first).

    `idle_hold_s`: how long a lease outlives its session's last touch or heartbeat; the page
    beats every 60 s while visible, so anything above that keeps a reading visitor's number.
    `history`: how many past holders each number remembers for matching late calls.
    `zone_window`: how many of the least recently released numbers zone-diverse reuse looks
    at (1: plain least recently released).
    """

    numbers: Sequence[str]
    idle_hold_s: float = 180.0
    history: int = 8
    zone_window: int = ZONE_WINDOW
    _free: list[tuple[float, int, str]] = field(default_factory=list, repr=False)
    _expiry: list[tuple[float, str]] = field(default_factory=list, repr=False)
    _active: dict[str, Holding] = field(default_factory=dict, repr=False)
    _by_visitor: dict[str, str] = field(default_factory=dict, repr=False)
    _past: dict[str, deque[Holding]] = field(default_factory=dict, repr=False)
    _seq: itertools.count[int] = field(default_factory=itertools.count, repr=False)
    leases: int = 0
    renewals: int = 0
    fallbacks: int = 0
    rate_tau_s: float = 3600.0
    _rate: float = 0.0
    _rate_at: float = 0.0

    def __post_init__(self) -> None:
        if self.idle_hold_s <= 0:
            raise ValueError("idle_hold_s must be positive")
        if self.zone_window < 1:
            raise ValueError("zone_window must be at least 1")
        if len(set(self.numbers)) != len(self.numbers):
            raise ValueError("a pool lists each number once")
        # Never-used numbers count as released at the epoch, in the order configured.
        for number in self.numbers:
            self._release_to_queue(number, 0.0)

    # -- the three operations ------------------------------------------------------------------
    def acquire(self, session_id: str, visitor_id: str, now: float, region: str = "") -> Grant:
        """The visitor's number: the one they hold (renewed), else the least recently released
        free number, else a fallback (counted). One visitor never holds two numbers."""
        self.reclaim(now)
        held = self._by_visitor.get(visitor_id)
        if held is not None:
            current = self._active[held]
            if current.session_id != session_id:
                # A new visit by the same visitor keeps the number; the old visit ends here.
                self._remember(replace(current, expires=now))
                current = Holding(held, session_id, visitor_id, now, now, now, region)
            current = replace(current, last_seen=now, expires=now + self.idle_hold_s)
            self._active[held] = current
            heapq.heappush(self._expiry, (current.expires, held))
            self.renewals += 1
            return Grant("renewed", held, current)
        if not self._free:
            self.fallbacks += 1
            return Grant("fallback", None)
        number = self._take_free(region)
        holding = Holding(number, session_id, visitor_id, now, now, now + self.idle_hold_s, region)
        self._active[number] = holding
        self._by_visitor[visitor_id] = number
        heapq.heappush(self._expiry, (holding.expires, number))
        self.leases += 1
        self._rate = (
            lease_rate(self._rate, self._rate_at, now, self.rate_tau_s) + 1 / self.rate_tau_s
        )
        self._rate_at = now
        return Grant("granted", number, holding)

    def heartbeat(self, session_id: str, visitor_id: str, now: float) -> Holding | None:
        """Keep the visitor's lease while its session is the holder; None if it lapsed."""
        self.reclaim(now)
        held = self._by_visitor.get(visitor_id)
        if held is None:
            return None
        current = self._active[held]
        if current.session_id != session_id:
            return None
        current = replace(current, last_seen=now, expires=now + self.idle_hold_s)
        self._active[held] = current
        heapq.heappush(self._expiry, (current.expires, held))
        return current

    def reclaim(self, now: float) -> int:
        """Return every lease whose hold has run out to the free queue; how many came back."""
        returned = 0
        while self._expiry and self._expiry[0][0] <= now:
            expires, number = heapq.heappop(self._expiry)
            current = self._active.get(number)
            if current is None or current.expires != expires:
                continue  # a stale heap entry: the lease was renewed or already returned
            del self._active[number]
            self._by_visitor.pop(current.visitor_id, None)
            self._remember(current)
            self._release_to_queue(number, current.expires)
            returned += 1
        return returned

    def add_numbers(self, numbers: Sequence[str]) -> None:
        """Numbers newly configured for a running pool join the free queue."""
        fresh = [n for n in numbers if n not in set(self.numbers)]
        self.numbers = [*self.numbers, *fresh]
        for number in fresh:
            self._release_to_queue(number, 0.0)

    def mark_spent(self, number: str) -> bool:
        """The number's last holder has called: reuse it first. False if it is held."""
        if number in self._active:
            return False
        for i, (_, seq, n) in enumerate(self._free):
            if n == number:
                self._free[i] = (-1.0, seq, n)
                heapq.heapify(self._free)
                return True
        return False

    def forget(self, visitors: set[str], sessions: set[str], now: float) -> int:
        """Erase a data subject: their current lease ends now (the number goes back to the
        free queue) and their past holdings leave the history. How many holdings went."""
        gone = 0
        for number, current in list(self._active.items()):
            if current.visitor_id in visitors or current.session_id in sessions:
                del self._active[number]
                self._by_visitor.pop(current.visitor_id, None)
                self._release_to_queue(number, now)
                gone += 1
        for past in self._past.values():
            kept = [
                h for h in past if h.visitor_id not in visitors and h.session_id not in sessions
            ]
            gone += len(past) - len(kept)
            if len(kept) != len(past):
                past.clear()
                past.extend(kept)
        return gone

    # -- reading -------------------------------------------------------------------------------
    def holdings(self, number: str) -> list[Holding]:
        """The current holder (if any) then past holders, newest first."""
        out = [self._active[number]] if number in self._active else []
        out.extend(self._past.get(number, ()))
        return out

    def use(self, now: float) -> PoolUse:
        self.reclaim(now)
        return PoolUse(
            size=len(self.numbers),
            in_use=len(self._active),
            free=len(self._free),
            leases=self.leases,
            renewals=self.renewals,
            fallbacks=self.fallbacks,
            lease_rate_per_s=lease_rate(self._rate, self._rate_at, now, self.rate_tau_s),
        )

    @property
    def in_use(self) -> int:
        return len(self._active)

    def active(self) -> Iterable[Holding]:
        return self._active.values()

    # -- internals -----------------------------------------------------------------------------
    def _take_free(self, region: str) -> str:
        """The least recently released free number, or with a known `region` the oldest of the
        `zone_window` oldest whose last holder was elsewhere (see the module's note)."""
        if self.zone_window > 1 and region and self._free[0][0] >= 0:
            for entry in heapq.nsmallest(self.zone_window, self._free):
                past = self._past.get(entry[2])
                last = past[0].region if past else None
                if last is None or (last and last != region):
                    i = self._free.index(entry)
                    self._free[i] = self._free[-1]
                    self._free.pop()
                    heapq.heapify(self._free)
                    return entry[2]
        _, _, number = heapq.heappop(self._free)
        return number

    def _remember(self, holding: Holding) -> None:
        past = self._past.get(holding.number)
        if past is None:
            past = self._past[holding.number] = deque(maxlen=self.history)
        past.appendleft(holding)

    def _release_to_queue(self, number: str, released_at: float) -> None:
        heapq.heappush(self._free, (released_at, next(self._seq), number))
