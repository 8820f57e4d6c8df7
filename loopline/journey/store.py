"""Live journey state behind one interface: pool leases and session touches.

`MemoryJourneyStore` (one node) keeps a `PoolCore` per pool; `RedisJourneyStore` (many nodes)
runs the same rules as Lua scripts. Each lease step is atomic in both: the memory store never
awaits inside a step, the Redis store runs it as one script. The same test suite runs both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from loopline.journey.pool import Grant, Holding, PoolCore, PoolUse
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


class MemoryJourneyStore(JourneyStore):
    def __init__(self) -> None:
        self._pools: dict[str, PoolCore] = {}
        self._touches: dict[str, list[str]] = {}
        self._known: dict[str, set[str]] = {}

    async def ensure_pool(self, spec: PoolSpec) -> None:
        core = self._pools.get(spec.name)
        if core is None:
            self._pools[spec.name] = PoolCore(
                list(spec.numbers), idle_hold_s=spec.idle_hold_s, history=spec.history
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
