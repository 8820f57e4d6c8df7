"""Delivering the outbox: one loop per destination leases due rows, renders them with the
destination's exporter, sends, and records what the destination said.

Guarantees, per destination:
- a row that the destination accepted (its answer recorded) is never sent again;
- a row is leased to one sender at a time; a sender that dies leaves its lease to run out
  (or to itself, when it restarts with the same node id) and the row is sent again then;
- what went out and was accepted just before a crash, with the answer not yet recorded, goes
  again with the same dedupe key (Meta `event_id`, Google `transaction_id` and `Order ID`,
  GA4 `transaction_id`, the webhook's `Idempotency-Key`), so the destination counts it once;
- failures are retried with exponential backoff and jitter; a row refused outright in a batch
  is retried alone; a row that keeps failing, or is refused alone, becomes a dead letter, kept
  until `loopline outbox replay` puts it back.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from loopline.attribution.exporters.base import CredentialMissing, Exporter, Judgement, Outgoing
from loopline.attribution.store import AttributionStore, Claimed
from loopline.config.attribution import Destination
from loopline.domain.clock import Clock
from loopline.domain.events import ConversionDelivered, ConversionFailed, Event

log = logging.getLogger(__name__)

Publish = Callable[[Event], Awaitable[object]]


def backoff_s(
    attempts: int, base_s: float, max_s: float, rand: random.Random | None = None
) -> float:
    """Delay before try number `attempts + 1`: exponential, capped, with "equal jitter" (half
    fixed, half random) so that rows failing together do not all come back together."""
    ceiling = min(max_s, base_s * 2.0 ** max(0, attempts - 1))
    r = rand.random() if rand is not None else random.random()
    return ceiling / 2 + r * ceiling / 2


@dataclass
class DestinationStats:
    sent_requests: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0


@dataclass
class Outbox:
    store: AttributionStore
    exporters: Mapping[str, Exporter]
    destinations: Mapping[str, Destination]
    clock: Clock
    owner: str
    publish: Publish | None = None
    poll_s: float = 0.5
    lease_margin_s: float = 30.0
    rand: random.Random = field(default_factory=random.Random)
    stats: dict[str, DestinationStats] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """New rows are due now: skip the rest of the poll wait."""
        self._wake.set()

    async def run(self) -> None:
        await self.store.reclaim(self.owner, self.clock.now())
        async with httpx.AsyncClient() as http, asyncio.TaskGroup() as group:
            for name in self.exporters:
                group.create_task(self._destination_loop(name, http), name=f"outbox-{name}")

    async def _destination_loop(self, name: str, http: httpx.AsyncClient) -> None:
        while True:
            try:
                handled = await self.deliver_once(name, http)
            except (OSError, RuntimeError) as exc:
                # The records database is away: the rows wait there; try again later.
                log.warning(
                    "outbox pass failed", extra={"destination": name, "error": type(exc).__name__}
                )
                handled = 0
            if handled:
                continue
            self._wake.clear()
            try:
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def deliver_once(self, name: str, http: httpx.AsyncClient) -> int:
        """One batch of one destination: lease, send, record. Returns how many rows it took."""
        exporter = self.exporters[name]
        dest = self.destinations[name]
        lease_s = dest.timeout_s * 2 + self.lease_margin_s
        claimed = await self.store.claim(
            name,
            limit=exporter.batch_limit,
            now=self.clock.now(),
            owner=self.owner,
            lease_s=lease_s,
        )
        if not claimed:
            return 0
        stats = self.stats.setdefault(name, DestinationStats())
        by_id = {c.conversion.id: c for c in claimed}
        now = self.clock.now()
        try:
            requests, skips = exporter.render([c.conversion for c in claimed], now)
        except CredentialMissing as exc:
            await self._failed(name, claimed, Judgement(False, True, str(exc)), stats)
            return len(claimed)
        except (ValueError, KeyError) as exc:
            await self._failed(
                name, claimed, Judgement(False, False, f"cannot render: {exc}"), stats
            )
            return len(claimed)
        if skips:
            await self.store.mark_skipped(
                [by_id[s.id].row_id for s in skips], [s.reason for s in skips], self.owner, now
            )
            stats.skipped += len(skips)
        sends = [self._send(http, dest.timeout_s, exporter, request) for request in requests]
        results = await asyncio.gather(*sends)
        for request, judgement in zip(requests, results, strict=True):
            rows = [by_id[i] for i in request.ids]
            stats.sent_requests += 1
            if judgement.accepted:
                await self.store.mark_delivered(
                    [r.row_id for r in rows], self.owner, self.clock.now()
                )
                stats.delivered += len(rows)
                await self._announce_delivered(name, rows)
            else:
                await self._failed(name, rows, judgement, stats)
        return len(claimed)

    async def _send(
        self, http: httpx.AsyncClient, timeout_s: float, exporter: Exporter, request: Outgoing
    ) -> Judgement:
        try:
            response = await http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                params=request.params or None,
                timeout=timeout_s,
            )
        except httpx.TimeoutException:
            return Judgement(False, True, "timed out")
        except httpx.TransportError as exc:
            return Judgement(False, True, f"unreachable: {type(exc).__name__}")
        return exporter.judge(response.status_code, response.content)

    async def _failed(
        self, name: str, rows: list[Claimed], judgement: Judgement, stats: DestinationStats
    ) -> None:
        dest = self.destinations[name]
        now = self.clock.now()
        error = judgement.error or "failed"
        changes: list[tuple[int, str, datetime | None, bool]] = []
        dead: list[Claimed] = []
        for row in rows:
            if not judgement.retryable and len(rows) > 1:
                # One bad conversion may sink a batch: each goes alone next time, at once.
                changes.append((row.row_id, error, now, True))
            elif not judgement.retryable or row.attempts >= dest.max_attempts:
                changes.append((row.row_id, error, None, row.solo))
                dead.append(row)
            else:
                delay = backoff_s(row.attempts, dest.backoff_base_s, dest.backoff_max_s, self.rand)
                changes.append((row.row_id, error, now + timedelta(seconds=delay), row.solo))
        await self.store.mark_failed(changes, self.owner, now)
        stats.failed += len(rows)
        stats.dead += len(dead)
        if dead:
            log.warning(
                "conversions moved to dead letters", extra={"destination": name, "count": len(dead)}
            )
        if self.publish is not None:
            dead_ids = {r.row_id for r in dead}
            for row in rows:
                await self._emit(
                    ConversionFailed(
                        call_id=row.conversion.call_id,
                        at=now,
                        conversion_id=row.conversion.id,
                        destination=name,
                        attempts=row.attempts,
                        error=error,
                        dead=row.row_id in dead_ids,
                    )
                )

    async def _announce_delivered(self, name: str, rows: list[Claimed]) -> None:
        if self.publish is None:
            return
        now = self.clock.now()
        for row in rows:
            await self._emit(
                ConversionDelivered(
                    call_id=row.conversion.call_id,
                    at=now,
                    conversion_id=row.conversion.id,
                    destination=name,
                    attempts=row.attempts,
                )
            )

    async def _emit(self, event: Event) -> None:
        assert self.publish is not None
        try:
            await self.publish(event)
        except Exception:  # the outbox row is the truth; a lost notice must not stop delivery
            log.warning("could not publish outbox event", extra={"event_type": event.type})
