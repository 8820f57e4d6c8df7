"""The journey room's front: touches in, numbers out, and a call matched to its session.

`JourneyService` is the router's `JourneyLookup`. It owns no connection of its own beyond the
`JourneyStore` it is given; all decisions are the pure functions of `swap`, `matching` and
`session`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

from loopline.domain.events import LeaseGranted, SessionTouched
from loopline.domain.journey import JourneyMatch
from loopline.journey.coalesce import TouchCoalescer
from loopline.journey.matching import (
    NO_MATCH,
    CallTiming,
    LeaseMatch,
    match_holdings,
    match_likely,
)
from loopline.journey.pool import Holding
from loopline.journey.session import StoredTouch, journey_fields, summarize
from loopline.journey.sizing import expected_match_rate, recommended_size
from loopline.journey.store import JourneyStore, PoolSpec, epoch_s
from loopline.journey.swap import SourceNumber, SwapChoice, SwapRules, choose_swap
from loopline.journey.zones import zone_of_region, zone_weight
from loopline.state.base import EventBus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolSetup:
    spec: PoolSpec
    fallback_number: str | None = None


@dataclass(frozen=True)
class NumberAnswer:
    """What the page shows: `number` None keeps the page's own number."""

    kind: str  # param | referrer | source | pool | fallback | default
    number: str | None
    campaign: str | None = None


def caller_key(number: str) -> str:
    """A caller's number as a key that names no one (sessions remember callers by it)."""
    return hashlib.sha256(number.encode()).hexdigest()[:24]


class TextClassifier(Protocol):
    def classify(self, text: str) -> tuple[str, float]:
        """Blocking: the label and its probability."""
        ...


class JourneyService:
    def __init__(
        self,
        store: JourneyStore,
        *,
        pools: Sequence[PoolSetup] = (),
        sources: Sequence[SourceNumber] = (),
        landing_param: str = "ll_campaign",
        referrer_rules: Sequence[tuple[str, str]] = (),
        default_number: str | None = None,
        timing: CallTiming | None = None,
        max_since_s: float | None = None,
        bus: EventBus | None = None,
        classifier: TextClassifier | None = None,
        touched_every_s: float = 5.0,
        caller_zone: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self._pools = {p.spec.name: p for p in pools}
        self._pool_of = {n: p.spec.name for p in pools for n in p.spec.numbers}
        self._sources = {s.number: s for s in sources}
        self._rules = SwapRules(
            sources=list(sources),
            landing_param=landing_param,
            referrer_rules=list(referrer_rules),
            pool=pools[0].spec.name if pools else None,
        )
        self._default = default_number
        self.timing = timing or CallTiming()
        self._max_since_s = max_since_s
        self._bus = bus
        self._classifier = classifier
        self._touched = TouchCoalescer(touched_every_s)
        # The caller's time zone from their number (the web room knows area codes); with it a
        # call on a number with several past holders weighs each by zone agreement.
        self._caller_zone = caller_zone
        self._ready = False
        self._ready_lock = asyncio.Lock()

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        async with self._ready_lock:
            if not self._ready:
                for pool in self._pools.values():
                    await self.store.ensure_pool(pool.spec)
                self._ready = True

    # -- touches -------------------------------------------------------------------------------
    async def record(
        self,
        session_id: str,
        visitor_id: str,
        touches: Sequence[StoredTouch],
        landing: str | None,
        referrer: str | None,
        now: datetime,
        region: str = "",
    ) -> NumberAnswer:
        """Keep the touches and answer with the number the visit should see."""
        await self._ensure_ready()
        await self.store.append_touches(session_id, [t.model_dump_json() for t in touches])
        if self._bus is not None and touches and self._touched.due(session_id, epoch_s(now)):
            latest = touches[-1]
            await self._bus.publish(
                SessionTouched(at=now, session_id=session_id, kind=latest.kind, url=latest.url)
            )
        choice = choose_swap(landing, referrer, self._rules)
        if choice.kind != "pool":
            return NumberAnswer(choice.kind, choice.number or self._default, choice.campaign)
        return await self._lease(choice, session_id, visitor_id, now, region)

    async def _lease(
        self, choice: SwapChoice, session_id: str, visitor_id: str, now: datetime, region: str
    ) -> NumberAnswer:
        pool = self._pools[self._rules.pool or ""]
        # The lease keeps the zone code, not the browser's zone name: zone-diverse reuse
        # compares it as a string (journey/pool.py), and matching reads it back as a zone.
        zone = zone_of_region(region) or ""
        grant = await self.store.acquire(pool.spec.name, session_id, visitor_id, now, zone)
        if grant.kind != "renewed" and self._bus is not None:
            await self._bus.publish(
                LeaseGranted(
                    at=now,
                    session_id=session_id,
                    number=grant.number or pool.fallback_number or "",
                    pool=pool.spec.name,
                    fallback=grant.number is None,
                )
            )
        if grant.number is None:
            return NumberAnswer("fallback", pool.fallback_number or self._default)
        return NumberAnswer("pool", grant.number)

    # -- calls ---------------------------------------------------------------------------------
    async def match(self, dialed: str, at: datetime, caller: str) -> JourneyMatch | None:
        await self._ensure_ready()
        pool = self._pool_of.get(dialed)
        if pool is None:
            source = self._sources.get(dialed)
            if source is None:
                return None
            return JourneyMatch(
                session_id="",
                confidence="source_only",
                campaign=source.campaign,
                source=source.source,
                medium=source.medium,
                matched_at=at,
            )
        holdings = await self.store.holdings(pool, dialed)
        found = self._find(holdings, epoch_s(at), caller)
        if found.holding is None:
            return JourneyMatch(session_id="", confidence="none", matched_at=at)
        session_id = found.holding.session_id
        raw = await self.store.touches(session_id)
        touches = []
        for line in raw:
            try:
                touches.append(StoredTouch.model_validate_json(line))
            except ValidationError:
                continue  # one unreadable touch must not lose the session
        key = caller_key(caller) if caller else ""
        confirmed = bool(key) and key in await self.store.known_callers(session_id)
        if key:
            await self.store.add_known_caller(session_id, key)
        if found.confidence == "last_holder" and found.holding is holdings[0]:
            # The holder has called: its number can go back out first.
            await self.store.mark_spent(pool, dialed)
        summary = summarize(session_id, touches)
        fields = journey_fields(summary)
        text = " . ".join([*summary.titles, *([summary.keyword] if summary.keyword else [])])
        if self._classifier is not None and text:
            # The model is CPU work: a worker thread, inside the router's journey budget.
            label, probability = await asyncio.to_thread(self._classifier.classify, text)
            fields["extra"]["text_intent"] = {"name": label, "confidence": round(probability, 4)}
        fields["extra"].update(
            {
                "pool": pool,
                "since_s": found.since_s,
                "confirmed_by_caller": confirmed,
                "visitor_id": found.holding.visitor_id,
            }
        )
        return JourneyMatch(
            session_id=session_id, confidence=found.confidence, matched_at=at, **fields
        )

    def _find(self, holdings: Sequence[Holding], at: float, caller: str) -> LeaseMatch:
        """The last holder's rule, or, when the caller's zone is known, timing likelihood
        weighted by zone agreement (bench_journey_attribution: +0.8 points at 1 number per 50
        daily visitors, no change at 1 per 20)."""
        zone = self._caller_zone(caller) if self._caller_zone is not None and caller else None
        if zone is None or len(holdings) < 2:
            return match_holdings(holdings, at, max_since_s=self._max_since_s)
        weights = [zone_weight(zone, zone_of_region(h.region)) for h in holdings]
        found = match_likely(holdings, at, self.timing, weights=weights)
        limit = self._max_since_s
        if found.confidence == "last_holder" and limit is not None and (found.since_s or 0) > limit:
            return NO_MATCH
        return found

    # -- pools ---------------------------------------------------------------------------------
    async def pools_report(self, now: datetime, target: float = 0.95) -> list[dict[str, object]]:
        await self._ensure_ready()
        out: list[dict[str, object]] = []
        mean_hold = self.timing.visit_mean_s
        for name, pool in self._pools.items():
            use = await self.store.use(name, now)
            hold = mean_hold + pool.spec.idle_hold_s
            out.append(
                {
                    "name": name,
                    "size": use.size,
                    "in_use": use.in_use,
                    "free": use.free,
                    "leases": use.leases,
                    "renewals": use.renewals,
                    "fallbacks": use.fallbacks,
                    "lease_rate_per_hour": round(use.lease_rate_per_s * 3600, 2),
                    "expected_match_rate": round(
                        expected_match_rate(use.size, use.lease_rate_per_s, hold, self.timing), 4
                    ),
                    "recommended_size": recommended_size(
                        use.lease_rate_per_s, hold, self.timing, target
                    ),
                    "target_match_rate": target,
                }
            )
        return out

    async def close(self) -> None:
        await self.store.close()
