"""The embedded state store: one node, everything in this process, every change under one lock.

Nothing here awaits while holding the lock, so a decision (reserve, confirm, release, expire)
is one indivisible step, as the Redis scripts are. Expiry times are kept as epoch
milliseconds, like Redis, so both stores agree to the millisecond on what has expired.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from loopline.domain.agents import AgentState, Presence
from loopline.domain.calls import CallState, QueuedCall, QueueStats, Reservation
from loopline.domain.clock import Clock, SystemClock
from loopline.state.base import StateStore
from loopline.state.encoding import (
    caller_key,
    expiry_ms,
    from_ms,
    queue_score,
    to_ms,
    ttl_ms,
)


@dataclass(slots=True)
class _Agent:
    agent_id: str
    capacity: int
    presence: Presence = Presence.OFFLINE
    presence_since: datetime | None = None
    idle_since: datetime | None = None
    last_offered_at: datetime | None = None
    calls_today: int = 0
    reserved: dict[str, int] = field(default_factory=dict)  # call id -> expires (epoch ms)
    active: set[str] = field(default_factory=set)
    # The last view handed to routing, dropped by `_sync_room` on every change: routing asks
    # for every agent with room on every call, and most of them have not changed since.
    shared_view: AgentState | None = None

    @property
    def load(self) -> int:
        return len(self.reserved) + len(self.active)

    @property
    def has_room(self) -> bool:
        return self.presence == Presence.AVAILABLE and self.load < self.capacity

    def view(self) -> AgentState:
        return AgentState(
            agent_id=self.agent_id,
            presence=self.presence,
            capacity=self.capacity,
            reserved=sorted(self.reserved),
            active=sorted(self.active),
            presence_since=self.presence_since,
            idle_since=self.idle_since,
            last_offered_at=self.last_offered_at,
            calls_today=self.calls_today,
        )


@dataclass(slots=True)
class _Queue:
    # (score, call id) in service order, and (enqueued ms, call id) for the longest wait; the
    # call id breaks ties the way a Redis sorted set does (lexicographically).
    order: list[tuple[int, str]] = field(default_factory=list)
    since: list[tuple[int, str]] = field(default_factory=list)
    items: dict[str, QueuedCall] = field(default_factory=dict)


def _remove_sorted(entries: list[tuple[int, str]], entry: tuple[int, str]) -> None:
    i = bisect.bisect_left(entries, entry)
    if i < len(entries) and entries[i] == entry:
        del entries[i]


class MemoryStateStore(StateStore):
    """Live state for one node. `clock` drives `claim_once` expiry (the other methods get `now`).

    Memory bounds: remembered last agents are capped (least recently set dropped first);
    `claim_once` keys are dropped once expired. Live calls stay until deleted: one process
    holds them, so a crash loses them all anyway.
    """

    def __init__(self, *, clock: Clock | None = None, max_last_agents: int = 100_000) -> None:
        self._clock: Clock = clock or SystemClock()
        self._lock = asyncio.Lock()
        self._agents: dict[str, _Agent] = {}
        self._with_room: set[str] = set()
        # call id -> agent id, for a reserved or an active call: a call holds one slot at most.
        self._holder: dict[str, str] = {}
        # (expires ms, call id, agent id); entries of confirmed or released calls are skipped
        # when popped rather than searched for and removed.
        self._expiries: list[tuple[int, str, str]] = []
        # call id -> (provider call id, the call's JSON)
        self._calls: dict[str, tuple[str, str]] = {}
        self._by_provider_id: dict[str, str] = {}
        self._queues: dict[str, _Queue] = {}
        self._last_agent: OrderedDict[str, str] = OrderedDict()
        self._max_last_agents = max_last_agents
        self._once: dict[str, int] = {}
        self._once_expiries: list[tuple[int, str]] = []

    # -- health ------------------------------------------------------------------------------
    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- agents ------------------------------------------------------------------------------
    def _sync_room(self, agent: _Agent) -> None:
        """Called after every change to an agent."""
        agent.shared_view = None
        if agent.has_room:
            self._with_room.add(agent.agent_id)
        else:
            self._with_room.discard(agent.agent_id)

    async def register_agent(self, agent_id: str, capacity: int) -> AgentState:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        async with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                agent = self._agents[agent_id] = _Agent(agent_id=agent_id, capacity=capacity)
            agent.capacity = capacity
            self._sync_room(agent)
            return agent.view()

    async def set_presence(self, agent_id: str, presence: Presence, now: datetime) -> AgentState:
        async with self._lock:
            agent = self._agents[agent_id]
            if agent.presence != presence:
                agent.presence = presence
                agent.presence_since = now
                if presence == Presence.AVAILABLE and agent.load == 0:
                    agent.idle_since = now
            self._sync_room(agent)
            return agent.view()

    async def get_agent(self, agent_id: str) -> AgentState | None:
        agent = self._agents.get(agent_id)
        return None if agent is None else agent.view()

    async def list_agents(self) -> list[AgentState]:
        return [self._agents[k].view() for k in sorted(self._agents)]

    async def agents_with_room(self) -> list[AgentState]:
        out = []
        for agent_id in sorted(self._with_room):
            agent = self._agents[agent_id]
            if agent.shared_view is None:
                agent.shared_view = agent.view()
            out.append(agent.shared_view)
        return out

    # -- reservations ------------------------------------------------------------------------
    async def reserve(
        self, call_id: str, candidates: Sequence[str], ttl_s: float, now: datetime
    ) -> str | None:
        expires = expiry_ms(now, ttl_s)
        async with self._lock:
            held = self._holder.get(call_id)
            if held is not None:
                return held
            for agent_id in candidates:
                agent = self._agents.get(agent_id)
                if agent is None or not agent.has_room:
                    continue
                agent.reserved[call_id] = expires
                agent.last_offered_at = now
                self._holder[call_id] = agent_id
                heapq.heappush(self._expiries, (expires, call_id, agent_id))
                self._sync_room(agent)
                return agent_id
            return None

    async def confirm(self, call_id: str, agent_id: str, now: datetime) -> bool:
        async with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                return False
            if call_id in agent.active:
                return True
            expires = agent.reserved.get(call_id)
            if expires is None or expires <= to_ms(now):
                return False
            del agent.reserved[call_id]
            agent.active.add(call_id)
            if agent.presence == Presence.AVAILABLE and agent.load >= agent.capacity:
                agent.presence = Presence.BUSY
                agent.presence_since = now
            self._sync_room(agent)
            return True

    async def release(self, call_id: str, agent_id: str, now: datetime) -> AgentState | None:
        async with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                return None
            if agent.reserved.pop(call_id, None) is not None:
                pass
            elif call_id in agent.active:
                agent.active.discard(call_id)
                agent.calls_today += 1
            else:
                return None
            if self._holder.get(call_id) == agent_id:
                del self._holder[call_id]
            if agent.presence == Presence.BUSY:
                agent.presence = Presence.AVAILABLE
                agent.presence_since = now
            if agent.load == 0:
                agent.idle_since = now
            self._sync_room(agent)
            return agent.view()

    async def claim_expired(self, now: datetime, limit: int = 100) -> list[Reservation]:
        now_ms = to_ms(now)
        claimed: list[Reservation] = []
        async with self._lock:
            heap = self._expiries
            while heap and heap[0][0] <= now_ms and len(claimed) < limit:
                expires, call_id, agent_id = heapq.heappop(heap)
                agent = self._agents.get(agent_id)
                if agent is None or agent.reserved.get(call_id) != expires:
                    continue  # confirmed, released or already claimed since it was pushed
                del agent.reserved[call_id]
                if self._holder.get(call_id) == agent_id:
                    del self._holder[call_id]
                self._sync_room(agent)
                claimed.append(
                    Reservation(call_id=call_id, agent_id=agent_id, expires_at=from_ms(expires))
                )
        return claimed

    # -- live calls --------------------------------------------------------------------------
    async def put_call(self, call: CallState) -> None:
        # Kept as JSON, as the Redis store keeps it: a caller who changes its object later does
        # not change ours, and a JSON round trip costs a fraction of a deep copy.
        stored = (call.provider_call_id, call.model_dump_json())
        async with self._lock:
            self._calls[call.call_id] = stored
            self._by_provider_id[call.provider_call_id] = call.call_id

    async def get_call(self, call_id: str) -> CallState | None:
        stored = self._calls.get(call_id)
        return None if stored is None else CallState.model_validate_json(stored[1])

    async def delete_call(self, call_id: str) -> None:
        async with self._lock:
            stored = self._calls.pop(call_id, None)
            if stored is not None and self._by_provider_id.get(stored[0]) == call_id:
                del self._by_provider_id[stored[0]]

    async def call_id_for(self, provider_call_id: str) -> str | None:
        return self._by_provider_id.get(provider_call_id)

    # -- queues ------------------------------------------------------------------------------
    async def enqueue(self, item: QueuedCall) -> None:
        score = queue_score(item.priority, item.enqueued_at)
        since = to_ms(item.enqueued_at)
        async with self._lock:
            queue = self._queues.setdefault(item.queue, _Queue())
            old = queue.items.get(item.call_id)
            if old is not None:
                _remove_sorted(
                    queue.order, (queue_score(old.priority, old.enqueued_at), old.call_id)
                )
                _remove_sorted(queue.since, (to_ms(old.enqueued_at), old.call_id))
            bisect.insort(queue.order, (score, item.call_id))
            bisect.insort(queue.since, (since, item.call_id))
            queue.items[item.call_id] = item.model_copy()

    async def queued(self, queue: str, limit: int = 50) -> list[QueuedCall]:
        q = self._queues.get(queue)
        if q is None or limit <= 0:
            return []
        return [q.items[call_id].model_copy() for _, call_id in q.order[:limit]]

    async def claim_queued(self, queue: str, call_id: str) -> bool:
        async with self._lock:
            q = self._queues.get(queue)
            if q is None:
                return False
            item = q.items.pop(call_id, None)
            if item is None:
                return False
            _remove_sorted(q.order, (queue_score(item.priority, item.enqueued_at), call_id))
            _remove_sorted(q.since, (to_ms(item.enqueued_at), call_id))
            if not q.items:
                del self._queues[queue]
            return True

    async def queue_names(self) -> list[str]:
        return sorted(self._queues)

    async def queue_stats(self, queue: str, now: datetime) -> QueueStats:
        q = self._queues.get(queue)
        available = len(self._with_room)
        if q is None:
            return QueueStats(agents_available=available)
        oldest_ms = q.since[0][0]
        wait_s = max(0.0, (to_ms(now) - oldest_ms) / 1000)
        return QueueStats(waiting=len(q.items), longest_wait_s=wait_s, agents_available=available)

    # -- small facts -------------------------------------------------------------------------
    async def set_last_agent(self, caller: str, agent_id: str) -> None:
        key = caller_key(caller)
        async with self._lock:
            self._last_agent[key] = agent_id
            self._last_agent.move_to_end(key)
            while len(self._last_agent) > self._max_last_agents:
                self._last_agent.popitem(last=False)

    async def get_last_agent(self, caller: str) -> str | None:
        return self._last_agent.get(caller_key(caller))

    async def forget_caller(self, caller: str) -> int:
        async with self._lock:
            return int(self._last_agent.pop(caller_key(caller), None) is not None)

    async def claim_once(self, key: str, ttl_s: float) -> bool:
        now_ms = to_ms(self._clock.now())
        ttl = ttl_ms(ttl_s)
        async with self._lock:
            heap = self._once_expiries
            while heap and heap[0][0] <= now_ms:
                expires, old = heapq.heappop(heap)
                if self._once.get(old) == expires:
                    del self._once[old]
            if key in self._once:
                return False
            expires = now_ms + ttl
            self._once[key] = expires
            heapq.heappush(heap, (expires, key))
            return True
