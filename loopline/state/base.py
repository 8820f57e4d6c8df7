"""Live state behind one interface: agents, reservations, queues, calls; and the event bus.

Two implementations of each: `memory` (one node, embedded) and `redis` (many nodes). The same
test suite runs against both. Every method that decides who gets what is atomic: under one
lock in memory, one Lua script in Redis.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import datetime

from loopline.domain.agents import AgentState, Presence
from loopline.domain.calls import CallState, QueuedCall, QueueStats, Reservation
from loopline.domain.events import Event


class StateUnavailable(RuntimeError):
    """The live state cannot be reached (Redis down); callers degrade, never crash."""


class StateStore(ABC):
    # -- health ------------------------------------------------------------------------------
    @abstractmethod
    async def ping(self) -> None:
        """Raise `StateUnavailable` when the store cannot be reached."""

    @abstractmethod
    async def close(self) -> None: ...

    # -- agents ------------------------------------------------------------------------------
    @abstractmethod
    async def register_agent(self, agent_id: str, capacity: int) -> AgentState:
        """Create the agent (offline) or update its capacity, keeping its live state."""

    @abstractmethod
    async def set_presence(self, agent_id: str, presence: Presence, now: datetime) -> AgentState:
        """Set an agent's presence. Raises `KeyError` for an unknown agent."""

    @abstractmethod
    async def get_agent(self, agent_id: str) -> AgentState | None: ...

    @abstractmethod
    async def list_agents(self) -> list[AgentState]: ...

    @abstractmethod
    async def agents_with_room(self) -> list[AgentState]:
        """The agents available with a free slot, in id order: the only ones a call can be
        offered to now, read on every routing decision, so kept cheap. The states may be
        shared between calls: treat them as read-only."""

    # -- reservations (atomic) ---------------------------------------------------------------
    @abstractmethod
    async def reserve(
        self, call_id: str, candidates: Sequence[str], ttl_s: float, now: datetime
    ) -> str | None:
        """Reserve the first candidate, in order, who is available with room; None if none.

        The reservation counts against capacity at once and expires at now + ttl_s unless
        confirmed. Sets the agent's `last_offered_at`. A call holds at most one reservation.
        """

    @abstractmethod
    async def confirm(self, call_id: str, agent_id: str, now: datetime) -> bool:
        """Turn the reservation into an active call; False if it expired or was released.

        When the agent's load reaches capacity its presence becomes busy.
        """

    @abstractmethod
    async def release(self, call_id: str, agent_id: str, now: datetime) -> AgentState | None:
        """Free the agent's slot for this call (reserved or active); None if it held none.

        A busy agent becomes available again; an agent left with no load gets `idle_since=now`;
        releasing an active call counts it in `calls_today`.
        """

    @abstractmethod
    async def claim_expired(self, now: datetime, limit: int = 100) -> list[Reservation]:
        """Remove and return reservations past their expiry; each goes to exactly one caller."""

    # -- live calls --------------------------------------------------------------------------
    @abstractmethod
    async def put_call(self, call: CallState) -> None: ...

    @abstractmethod
    async def get_call(self, call_id: str) -> CallState | None: ...

    @abstractmethod
    async def delete_call(self, call_id: str) -> None: ...

    @abstractmethod
    async def call_id_for(self, provider_call_id: str) -> str | None:
        """The call id of a provider's call (set by `put_call`)."""

    # -- queues ------------------------------------------------------------------------------
    @abstractmethod
    async def enqueue(self, item: QueuedCall) -> None:
        """Add a call to its queue, served by highest priority, then longest waiting."""

    @abstractmethod
    async def queued(self, queue: str, limit: int = 50) -> list[QueuedCall]:
        """The first `limit` calls of a queue, in service order."""

    @abstractmethod
    async def claim_queued(self, queue: str, call_id: str) -> bool:
        """Remove a call from its queue; True for exactly one of any concurrent claimers."""

    @abstractmethod
    async def queue_names(self) -> list[str]:
        """Queues that hold at least one call."""

    @abstractmethod
    async def queue_stats(self, queue: str, now: datetime) -> QueueStats: ...

    async def queue_stats_many(self, queues: Sequence[str], now: datetime) -> dict[str, QueueStats]:
        """`queue_stats` of several queues at once (one round trip where the store can)."""
        return {name: await self.queue_stats(name, now) for name in queues}

    # -- small facts -------------------------------------------------------------------------
    @abstractmethod
    async def set_last_agent(self, caller: str, agent_id: str) -> None: ...

    @abstractmethod
    async def get_last_agent(self, caller: str) -> str | None: ...

    @abstractmethod
    async def claim_once(self, key: str, ttl_s: float) -> bool:
        """True the first time `key` is claimed within ttl_s (webhook retries, dedupe)."""

    async def forget_caller(self, caller: str) -> int:
        """Data-subject erasure: drop what the live state keeps under a caller's number (the
        last agent they spoke to). How many entries went."""
        raise NotImplementedError


class Subscription(ABC):
    """A stream of (event id, event). Use as `async with bus.subscribe() as sub: async for ...`."""

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[tuple[str, Event]]: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def next_batch(self, limit: int) -> list[tuple[str, Event]]:
        """The next event (waiting for it), then whatever else is ready without waiting, up to
        `limit` in all, in order; empty once the subscription has ended.

        For a consumer that does better per batch than per event (the records writer: one
        transaction for many). In a group, the batch counts as handled when the next is asked
        for, as a single event does with `async for`."""
        try:
            return [await anext(aiter(self))]
        except StopAsyncIteration:
            return []

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class EventBus(ABC):
    @abstractmethod
    async def publish(self, event: Event) -> str:
        """Publish to every subscriber on every node; returns the event id (ordered)."""

    async def forget_calls(self, call_ids: set[str], sessions: set[str] | None = None) -> int:
        """Data-subject erasure: drop the kept events of these calls and web sessions (a
        replay must not bring them back). How many went; a bus that keeps nothing has none."""
        return 0

    @abstractmethod
    def subscribe(
        self,
        *,
        after: str | None = None,
        group: str | None = None,
        types: Collection[str] | None = None,
    ) -> Subscription:
        """Every event from now on (or after the id `after`, as far as the bus keeps them).

        With `group`, each event goes to one subscriber of that group across all nodes (the
        records writer uses this so that two nodes do not write one event twice).

        With `types`, only events of those types (`Event.type`) are delivered; the others are
        passed over before they are decoded or queued (in a group they count as handled), so
        a subscriber that wants a few kinds pays nothing for the busy ones (interim
        transcripts, agent states). Every member of one group asks for the same types.
        """

    @abstractmethod
    async def close(self) -> None: ...
