"""The Redis state store: many nodes share one Redis; every decision is one Lua script.

Key layout (P = prefix, "loopline:" by default; see `loopline.state.lua` for the agent keys):
  P agents                SET   registered agent ids
  P agents-with-room      SET   agents available with a free slot (for queue_stats)
  P room-views            HASH  agent id -> compact JSON view, agents with room only
  P agent:<id> ...        agent hash and its reserved / active call sets
  P reservations          ZSET  call id -> reservation expiry (epoch ms)
  P holders               HASH  call id -> agent id, for reserved and active calls
  P call:<call id>        STRING CallState JSON, expires after `call_ttl_s`
  P pcall:<provider id>   STRING call id, same expiry
  P queues                SET   queue names that hold calls
  P queue:<name>          ZSET  call id -> -priority * 1e13 + enqueued ms (service order)
  P queue-since:<name>    ZSET  call id -> enqueued ms (longest wait)
  P queue-items:<name>    HASH  call id -> QueuedCall JSON
  P last-agent:<hash>     STRING agent id; the caller's number is hashed out of the key name
  P once:<key>            STRING claim_once marker, SET NX PX

Agent times are kept as epoch milliseconds: they round-trip exact to the millisecond and come
back as UTC datetimes. Calls and queue items keep pydantic's JSON (microseconds).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from loopline.domain.agents import AgentState, Presence
from loopline.domain.calls import CallState, QueuedCall, QueueStats, Reservation
from loopline.state import lua
from loopline.state.base import StateStore, StateUnavailable
from loopline.state.encoding import (
    caller_key,
    expiry_ms,
    from_ms,
    queue_score,
    to_ms,
    ttl_ms,
)
from loopline.state.redis_client import connect, guarded, require_text_replies, text

DAY_S = 24 * 3600


def _time(fields: dict[str, str], name: str) -> datetime | None:
    raw = fields.get(name)
    return None if raw is None or raw == "" else from_ms(int(float(raw)))


def agent_from_compact(line: str) -> AgentState:
    """An AgentState from one line of the room-views script (see `lua._AGENT_HELPERS`)."""
    agent_id, presence, capacity, since, idle, offered, calls, reserved, active = json.loads(line)
    return AgentState(
        agent_id=agent_id,
        presence=Presence(presence),
        capacity=int(capacity),
        # cjson writes an empty Lua table as {}.
        reserved=sorted(reserved) if reserved else [],
        active=sorted(active) if active else [],
        presence_since=from_ms(int(float(since))) if since else None,
        idle_since=from_ms(int(float(idle))) if idle else None,
        last_offered_at=from_ms(int(float(offered))) if offered else None,
        calls_today=int(calls),
    )


def agent_from_view(agent_id: str, view: Sequence[Any]) -> AgentState:
    """An AgentState from a script's {HGETALL, reserved, active} reply."""
    flat, reserved, active = view
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return AgentState(
        agent_id=agent_id,
        presence=Presence(fields.get("presence", Presence.OFFLINE)),
        capacity=int(fields.get("capacity", 1)),
        reserved=sorted(reserved),
        active=sorted(active),
        presence_since=_time(fields, "presence_since"),
        idle_since=_time(fields, "idle_since"),
        last_offered_at=_time(fields, "last_offered_at"),
        calls_today=int(fields.get("calls_today", 0)),
    )


class RedisStateStore(StateStore):
    """Live state in Redis. The store owns `client` and closes it in `close()`."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "loopline:",
        call_ttl_s: float = DAY_S,
        last_agent_ttl_s: float = 30 * DAY_S,
    ) -> None:
        require_text_replies(client)
        self._r = client
        self._p = prefix
        self._call_ttl_ms = ttl_ms(call_ttl_s)
        self._last_agent_ttl_ms = ttl_ms(last_agent_ttl_s)
        self._k_agents = prefix + "agents"
        self._k_room = prefix + "agents-with-room"
        self._k_reservations = prefix + "reservations"
        self._k_holders = prefix + "holders"
        self._k_queues = prefix + "queues"
        self._k_room_views = prefix + "room-views"
        # Compact view line -> the state parsed from it: an agent whose view has not changed
        # since the last routing read costs a dict lookup, not a parse. Holds the last read only.
        self._room_states: dict[str, AgentState] = {}
        self._register = client.register_script(lua.REGISTER)
        self._set_presence = client.register_script(lua.SET_PRESENCE)
        self._reserve = client.register_script(lua.RESERVE)
        self._confirm = client.register_script(lua.CONFIRM)
        self._release = client.register_script(lua.RELEASE)
        self._claim_expired = client.register_script(lua.CLAIM_EXPIRED)
        self._agent_views = client.register_script(lua.AGENT_VIEWS)
        self._room_views = client.register_script(lua.ROOM_VIEWS)
        self._delete_call = client.register_script(lua.DELETE_CALL)
        self._claim_queued = client.register_script(lua.CLAIM_QUEUED)
        self._queued = client.register_script(lua.QUEUED)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "loopline:",
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.5,
        max_connections: int = 64,
        call_ttl_s: float = DAY_S,
        last_agent_ttl_s: float = 30 * DAY_S,
    ) -> RedisStateStore:
        client = connect(
            url,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
        )
        return cls(client, prefix=prefix, call_ttl_s=call_ttl_s, last_agent_ttl_s=last_agent_ttl_s)

    # -- health ------------------------------------------------------------------------------
    async def ping(self) -> None:
        await guarded("ping", self._r.ping())

    async def close(self) -> None:
        await self._r.aclose()

    # -- agents ------------------------------------------------------------------------------
    async def register_agent(self, agent_id: str, capacity: int) -> AgentState:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        view = await guarded(
            "register_agent",
            self._register(keys=[self._k_agents, self._k_room], args=[self._p, agent_id, capacity]),
        )
        return agent_from_view(agent_id, view)

    async def set_presence(self, agent_id: str, presence: Presence, now: datetime) -> AgentState:
        view = await guarded(
            "set_presence",
            self._set_presence(
                keys=[self._k_room], args=[self._p, agent_id, presence.value, to_ms(now)]
            ),
        )
        if view is None:
            raise KeyError(agent_id)
        return agent_from_view(agent_id, view)

    async def get_agent(self, agent_id: str) -> AgentState | None:
        rows = await guarded(
            "get_agent", self._agent_views(keys=[self._k_agents], args=[self._p, agent_id])
        )
        return agent_from_view(agent_id, rows[0][1:]) if rows else None

    async def list_agents(self) -> list[AgentState]:
        rows = await guarded(
            "list_agents", self._agent_views(keys=[self._k_agents], args=[self._p])
        )
        agents = [agent_from_view(row[0], row[1:]) for row in rows]
        return sorted(agents, key=lambda a: a.agent_id)

    async def agents_with_room(self) -> list[AgentState]:
        blob = await guarded("agents_with_room", self._room_views(keys=[self._k_room_views]))
        known = self._room_states
        fresh: dict[str, AgentState] = {}
        for line in text(blob).split("\n") if blob else ():
            state = known.get(line)
            fresh[line] = state if state is not None else agent_from_compact(line)
        self._room_states = fresh
        return sorted(fresh.values(), key=_agent_id)

    # -- reservations ------------------------------------------------------------------------
    def _reservation_keys(self) -> list[str]:
        return [self._k_reservations, self._k_holders, self._k_room]

    async def reserve(
        self, call_id: str, candidates: Sequence[str], ttl_s: float, now: datetime
    ) -> str | None:
        expires = expiry_ms(now, ttl_s)
        agent_id: str | None = await guarded(
            "reserve",
            self._reserve(
                keys=self._reservation_keys(),
                args=[self._p, call_id, to_ms(now), expires, *candidates],
            ),
        )
        return agent_id

    async def confirm(self, call_id: str, agent_id: str, now: datetime) -> bool:
        done = await guarded(
            "confirm",
            self._confirm(
                keys=self._reservation_keys(), args=[self._p, call_id, agent_id, to_ms(now)]
            ),
        )
        return bool(done)

    async def release(self, call_id: str, agent_id: str, now: datetime) -> AgentState | None:
        view = await guarded(
            "release",
            self._release(
                keys=self._reservation_keys(), args=[self._p, call_id, agent_id, to_ms(now)]
            ),
        )
        return None if view is None else agent_from_view(agent_id, view)

    async def claim_expired(self, now: datetime, limit: int = 100) -> list[Reservation]:
        if limit <= 0:
            return []
        flat = await guarded(
            "claim_expired",
            self._claim_expired(keys=self._reservation_keys(), args=[self._p, to_ms(now), limit]),
        )
        return [
            Reservation(call_id=c, agent_id=a, expires_at=from_ms(int(float(e))))
            for c, a, e in zip(flat[::3], flat[1::3], flat[2::3], strict=True)
        ]

    # -- live calls --------------------------------------------------------------------------
    def _call_key(self, call_id: str) -> str:
        return f"{self._p}call:{call_id}"

    async def put_call(self, call: CallState) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._call_key(call.call_id), call.model_dump_json(), px=self._call_ttl_ms)
            pipe.set(f"{self._p}pcall:{call.provider_call_id}", call.call_id, px=self._call_ttl_ms)
            await guarded("put_call", pipe.execute())

    async def get_call(self, call_id: str) -> CallState | None:
        raw = await guarded("get_call", self._r.get(self._call_key(call_id)))
        return None if raw is None else CallState.model_validate_json(raw)

    async def delete_call(self, call_id: str) -> None:
        await guarded(
            "delete_call",
            self._delete_call(keys=[self._call_key(call_id)], args=[f"{self._p}pcall:", call_id]),
        )

    async def call_id_for(self, provider_call_id: str) -> str | None:
        call_id = await guarded("call_id_for", self._r.get(f"{self._p}pcall:{provider_call_id}"))
        return None if call_id is None else text(call_id)

    # -- queues ------------------------------------------------------------------------------
    def _queue_keys(self, queue: str) -> tuple[str, str, str]:
        p = self._p
        return f"{p}queue:{queue}", f"{p}queue-since:{queue}", f"{p}queue-items:{queue}"

    async def enqueue(self, item: QueuedCall) -> None:
        score = queue_score(item.priority, item.enqueued_at)
        order, since, items = self._queue_keys(item.queue)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.zadd(order, {item.call_id: score})
            pipe.zadd(since, {item.call_id: to_ms(item.enqueued_at)})
            pipe.hset(items, item.call_id, item.model_dump_json())
            pipe.sadd(self._k_queues, item.queue)
            await guarded("enqueue", pipe.execute())

    async def queued(self, queue: str, limit: int = 50) -> list[QueuedCall]:
        if limit <= 0:
            return []
        order, _, items = self._queue_keys(queue)
        raws = await guarded("queued", self._queued(keys=[order, items], args=[limit]))
        return [QueuedCall.model_validate_json(raw) for raw in raws]

    async def claim_queued(self, queue: str, call_id: str) -> bool:
        won = await guarded(
            "claim_queued",
            self._claim_queued(
                keys=[*self._queue_keys(queue), self._k_queues], args=[queue, call_id]
            ),
        )
        return bool(won)

    async def queue_names(self) -> list[str]:
        names = await guarded("queue_names", self._r.smembers(self._k_queues))
        return sorted(text(name) for name in names)

    async def queue_stats(self, queue: str, now: datetime) -> QueueStats:
        order, since, _ = self._queue_keys(queue)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.zcard(order)
            pipe.zrange(since, 0, 0, withscores=True)
            pipe.scard(self._k_room)
            waiting, oldest, available = await guarded("queue_stats", pipe.execute())
        wait_s = max(0.0, (to_ms(now) - int(oldest[0][1])) / 1000) if oldest else 0.0
        return QueueStats(waiting=waiting, longest_wait_s=wait_s, agents_available=available)

    async def queue_stats_many(self, queues: Sequence[str], now: datetime) -> dict[str, QueueStats]:
        names = list(queues)
        if not names:
            return {}
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.scard(self._k_room)
            for name in names:
                order, since, _ = self._queue_keys(name)
                pipe.zcard(order)
                pipe.zrange(since, 0, 0, withscores=True)
            reply = await guarded("queue_stats", pipe.execute())
        available, now_ms = reply[0], to_ms(now)
        stats: dict[str, QueueStats] = {}
        for n, name in enumerate(names):
            waiting, oldest = reply[1 + 2 * n], reply[2 + 2 * n]
            wait_s = max(0.0, (now_ms - int(oldest[0][1])) / 1000) if oldest else 0.0
            stats[name] = QueueStats(
                waiting=waiting, longest_wait_s=wait_s, agents_available=available
            )
        return stats

    # -- small facts -------------------------------------------------------------------------
    async def set_last_agent(self, caller: str, agent_id: str) -> None:
        key = f"{self._p}last-agent:{caller_key(caller)}"
        await guarded("set_last_agent", self._r.set(key, agent_id, px=self._last_agent_ttl_ms))

    async def get_last_agent(self, caller: str) -> str | None:
        agent_id = await guarded(
            "get_last_agent", self._r.get(f"{self._p}last-agent:{caller_key(caller)}")
        )
        return None if agent_id is None else text(agent_id)

    async def forget_caller(self, caller: str) -> int:
        key = f"{self._p}last-agent:{caller_key(caller)}"
        return int(await guarded("forget_caller", self._r.delete(key)))

    async def claim_once(self, key: str, ttl_s: float) -> bool:
        won = await guarded(
            "claim_once", self._r.set(f"{self._p}once:{key}", "1", nx=True, px=ttl_ms(ttl_s))
        )
        return bool(won)


def _agent_id(state: AgentState) -> str:
    return state.agent_id


__all__ = ["RedisStateStore", "StateUnavailable", "agent_from_compact", "agent_from_view"]
