"""Live journey state behind one interface: pool leases and session touches.

`MemoryJourneyStore` (one node) keeps a `PoolCore` per pool; `RedisJourneyStore` (many nodes)
runs the same rules as Lua scripts. Each lease step is atomic in both: the memory store never
awaits inside a step, the Redis store runs it as one script. The same test suite runs both.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from loopline.journey.pool import ZONE_WINDOW, Grant, Holding, PoolCore, PoolUse
from loopline.state.encoding import EPOCH

SESSION_TOUCH_CAP = 200  # touches kept per session; a runaway page cannot grow it further
SESSION_TTL_S = 30 * 86400


def epoch_s(at: datetime) -> float:
    return (at - EPOCH).total_seconds()


@dataclass(frozen=True)
class PoolSpec:
    name: str
    numbers: Sequence[str]
    idle_hold_s: float = 180.0
    history: int = 8
    zone_window: int = ZONE_WINDOW  # zone-diverse reuse (journey/pool.py); 1: plain LRR


class JourneyStore(ABC):
    """Pools (leases, matching history) and sessions (their touches, as JSON lines)."""

    @abstractmethod
    async def ensure_pool(self, spec: PoolSpec) -> None:
        """Create the pool or add newly configured numbers to it; safe on every start."""

    @abstractmethod
    async def acquire(
        self, pool: str, session_id: str, visitor_id: str, now: datetime, region: str = ""
    ) -> Grant: ...

    @abstractmethod
    async def heartbeat(
        self, pool: str, session_id: str, visitor_id: str, now: datetime
    ) -> Holding | None: ...

    @abstractmethod
    async def holdings(self, pool: str, number: str) -> list[Holding]:
        """Current holder (if any) then past holders, newest first."""

    @abstractmethod
    async def mark_spent(self, pool: str, number: str) -> bool: ...

    @abstractmethod
    async def use(self, pool: str, now: datetime) -> PoolUse: ...

    @abstractmethod
    async def append_touches(self, session_id: str, touches: Sequence[str]) -> None:
        """Append touches (JSON text) to a session, keeping the newest SESSION_TOUCH_CAP."""

    @abstractmethod
    async def touches(self, session_id: str) -> list[str]: ...

    @abstractmethod
    async def add_known_caller(self, session_id: str, caller_key: str) -> None: ...

    @abstractmethod
    async def known_callers(self, session_id: str) -> set[str]: ...

    async def close(self) -> None:  # noqa: B027 - the memory store holds nothing to release
        """Release connections."""

    async def forget(self, visitors: set[str], sessions: set[str], now: datetime) -> int:
        """Erase a data subject: the sessions' touches and known callers, and every lease or
        past holding of those visitors or sessions. How many things went."""
        raise NotImplementedError

    async def sessions_of(self, visitors: set[str]) -> set[str]:
        """The sessions any pool remembers for these visitors."""
        raise NotImplementedError

    async def expire_sessions(self, before: datetime, limit: int) -> int:
        """Retention: drop sessions whose newest touch is older than `before` (at most
        `limit`); the Redis store's sessions expire by themselves, so it has none to drop."""
        return 0


class MemoryJourneyStore(JourneyStore):
    def __init__(self) -> None:
        self._pools: dict[str, PoolCore] = {}
        self._touches: dict[str, list[str]] = {}
        self._known: dict[str, set[str]] = {}

    async def ensure_pool(self, spec: PoolSpec) -> None:
        core = self._pools.get(spec.name)
        if core is None:
            self._pools[spec.name] = PoolCore(
                list(spec.numbers),
                idle_hold_s=spec.idle_hold_s,
                history=spec.history,
                zone_window=spec.zone_window,
            )
            return
        added = [n for n in spec.numbers if n not in core.numbers]
        if added:
            core.add_numbers(added)

    def _pool(self, pool: str) -> PoolCore:
        try:
            return self._pools[pool]
        except KeyError:
            raise KeyError(f"unknown pool {pool!r}") from None

    async def acquire(
        self, pool: str, session_id: str, visitor_id: str, now: datetime, region: str = ""
    ) -> Grant:
        return self._pool(pool).acquire(session_id, visitor_id, epoch_s(now), region)

    async def heartbeat(
        self, pool: str, session_id: str, visitor_id: str, now: datetime
    ) -> Holding | None:
        return self._pool(pool).heartbeat(session_id, visitor_id, epoch_s(now))

    async def holdings(self, pool: str, number: str) -> list[Holding]:
        return self._pool(pool).holdings(number)

    async def mark_spent(self, pool: str, number: str) -> bool:
        return self._pool(pool).mark_spent(number)

    async def use(self, pool: str, now: datetime) -> PoolUse:
        return self._pool(pool).use(epoch_s(now))

    async def append_touches(self, session_id: str, touches: Sequence[str]) -> None:
        kept = self._touches.setdefault(session_id, [])
        kept.extend(touches)
        del kept[:-SESSION_TOUCH_CAP]

    async def touches(self, session_id: str) -> list[str]:
        return list(self._touches.get(session_id, ()))

    async def add_known_caller(self, session_id: str, caller_key: str) -> None:
        self._known.setdefault(session_id, set()).add(caller_key)

    async def known_callers(self, session_id: str) -> set[str]:
        return set(self._known.get(session_id, ()))

    async def forget(self, visitors: set[str], sessions: set[str], now: datetime) -> int:
        gone = 0
        for core in self._pools.values():
            gone += core.forget(visitors, sessions, epoch_s(now))
        for session_id in sessions:
            gone += int(self._touches.pop(session_id, None) is not None)
            gone += int(self._known.pop(session_id, None) is not None)
        return gone

    async def sessions_of(self, visitors: set[str]) -> set[str]:
        found: set[str] = set()
        for core in self._pools.values():
            for number in core.numbers:
                found |= {h.session_id for h in core.holdings(number) if h.visitor_id in visitors}
        return found

    async def expire_sessions(self, before: datetime, limit: int) -> int:
        old = []
        for session_id, touches in self._touches.items():
            newest = _touch_time(touches[-1]) if touches else None
            if newest is None or newest < before:
                old.append(session_id)
                if len(old) >= limit:
                    break
        for session_id in old:
            self._touches.pop(session_id, None)
            self._known.pop(session_id, None)
        return len(old)


def _touch_time(raw: str) -> datetime | None:
    """A stored touch's time (touches are kept as JSON text)."""
    try:
        value = json.loads(raw).get("at")
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
