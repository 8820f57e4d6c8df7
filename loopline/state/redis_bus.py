"""The event bus across nodes: one Redis stream, `<prefix>events`, trimmed to about `maxlen`.

Plain subscribers read the stream with XREAD from where it stood when they started (the last
entry's id, taken in `__aenter__` or on the first read, so an event published after
`async with bus.subscribe()` is never missed) or from `after`.

Group subscribers share a consumer group: XREADGROUP hands each entry to one consumer. Each
subscription is its own consumer, named "<node id>-<n>". Delivery is at-least-once: an entry is
acknowledged (XACK) only once the subscriber asks for the next one, so an event being handled
when a node dies stays pending and another member takes it over with XAUTOCLAIM after
`claim_idle_s` (checked when a member starts and every `claim_idle_s` after). Consumers must
therefore tolerate seeing an event twice (records key on the event id).

A group is created at id 0 the first time any node subscribes to it (or at `after` if given):
it starts with everything the stream still holds, so events published while the first node
starts, before its records writer subscribes, are kept for the group. Once created, the group
remembers its own position in Redis, so a restarted node misses nothing published while it was
down (as far as the stream keeps it). A new group on an old stream therefore begins with up to
`maxlen` past events; pass `after` to start it elsewhere.

Every subscription reads on its own connection in its own task, with a BLOCK of `block_s`;
`close()` cancels that task (its connection is discarded, as any connection cut off mid-read
must be) and leaves nothing running. Events a group member had read but not yet handed out
when it closed are marked idle at once, so the next take-over by another member picks them up.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
import socket
from collections import deque
from collections.abc import Collection
from typing import Any, cast

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError, ResponseError
from redis.typing import StreamIdT

from loopline.domain.events import Event, dump_event, parse_event
from loopline.state.base import EventBus, StateUnavailable, Subscription
from loopline.state.redis_client import (
    connect,
    dedicated_client,
    guarded,
    require_text_replies,
    text,
)

log = logging.getLogger("loopline.state.bus")

Item = tuple[str, Event]
Entry = tuple[str, dict[str, str] | None]

# A consumer with nothing pending and idle this long belongs to a node that went away.
STALE_CONSUMER_MS = 3_600_000


def _owners(raw: str) -> set[str]:
    """The call id and web session id an event's JSON names."""
    try:
        data = json.loads(raw)
    except ValueError:
        return set()
    if not isinstance(data, dict):
        return set()
    return {v for v in (data.get("call_id"), data.get("session_id")) if isinstance(v, str)}


def stream_entries(reply: Any) -> list[Entry]:
    """The (id, fields) entries of an XREAD / XREADGROUP reply, RESP2 (a list of [stream,
    entries]) or RESP3 (a map of stream -> [entries]); an entry deleted since it was
    delivered comes back with no fields."""
    if not reply:
        return []
    if isinstance(reply, dict):
        chunks = [v[0] if v and isinstance(v[0], list) else v for v in reply.values()]
    else:
        chunks = [stream[1] for stream in reply]
    return [(text(entry_id), fields) for chunk in chunks for entry_id, fields in chunk]


class _Inbox:
    """A bounded buffer between a reader task and the consumer, ended at most once."""

    def __init__(self, limit: int) -> None:
        self._items: deque[Item] = deque()
        self._limit = limit
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._ended = False
        self._error: StateUnavailable | None = None

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> list[str]:
        return [entry_id for entry_id, _ in self._items]

    async def put(self, item: Item) -> None:
        while len(self._items) >= self._limit:
            self._not_full.clear()
            await self._not_full.wait()
        self._items.append(item)
        self._not_empty.set()

    async def get(self) -> Item:
        while True:
            if self._items:
                self._not_full.set()
                return self._items.popleft()
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._not_empty.clear()
            await self._not_empty.wait()

    def take_ready(self, limit: int) -> list[Item]:
        """Up to `limit` items already here, without waiting."""
        items = self._items
        taken = [items.popleft() for _ in range(min(limit, len(items)))]
        if taken:
            self._not_full.set()
        return taken

    def end(self, error: StateUnavailable | None = None, *, discard: bool = False) -> None:
        if discard:
            self._items.clear()
        if not self._ended:
            self._ended = True
            self._error = error
        self._not_empty.set()


class _RedisSubscription(Subscription):
    def __init__(self, bus: RedisEventBus, name: str, types: frozenset[str] | None) -> None:
        self._bus = bus
        self._name = name
        self._types = types  # None: every type
        self._inbox = _Inbox(bus.buffer)
        self._reader: asyncio.Task[None] | None = None
        self._conn: aioredis.Redis | None = None
        self._start_lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> Subscription:
        await self._start()
        return self

    def __aiter__(self) -> _RedisSubscription:
        return self

    async def __anext__(self) -> Item:
        if self._closed:
            raise StopAsyncIteration
        await self._start()
        return await self._inbox.get()

    async def next_batch(self, limit: int) -> list[Item]:
        try:
            first = await self.__anext__()
        except StopAsyncIteration:
            return []
        return [first, *self._inbox.take_ready(limit - 1)]

    async def _start(self) -> None:
        if self._reader is not None or self._closed:
            return
        async with self._start_lock:
            if self._reader is not None or self._closed:
                return
            await self._prepare()
            if self._closed:  # closed while preparing
                return
            self._conn = dedicated_client(self._bus.client, socket_timeout=self._bus.block_s + 2)
            self._reader = asyncio.create_task(self._run(self._conn), name=self._name)

    async def _prepare(self) -> None:
        """Decide where reading starts (one round trip on the shared client)."""

    async def _read(self, conn: aioredis.Redis) -> None:
        raise NotImplementedError

    async def _run(self, conn: aioredis.Redis) -> None:
        try:
            await self._read(conn)
        except (RedisError, OSError) as exc:
            name = type(exc).__name__
            self._inbox.end(StateUnavailable(f"redis unavailable while reading events ({name})"))
        except StateUnavailable as exc:
            self._inbox.end(exc)
        except Exception:
            # A bug, not an outage; still, the consumer must not wait forever on a dead reader.
            log.exception("event reader failed")
            self._inbox.end(StateUnavailable("event reader failed"))

    def _passes_over(self, fields: dict[str, str] | None) -> bool:
        """An entry of a type this subscriber does not want, known by its "t" field alone
        (no JSON parsed); entries written without one are parsed, then checked."""
        if self._types is None or not fields:
            return False
        kind = fields.get("t")
        return kind is not None and kind not in self._types

    def _wants(self, event: Event) -> bool:
        return self._types is None or event.type in self._types

    def _decode(self, entry_id: str, fields: dict[str, str] | None) -> Event | None:
        try:
            return parse_event((fields or {})["e"])
        except (KeyError, ValidationError, ValueError):
            log.warning("skipping an unreadable event", extra={"event_id": entry_id})
            return None

    async def _stop_reader(self) -> None:
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            # Cancel until it is really done: on Python 3.11 `asyncio.wait_for`, which
            # redis-py sends commands with, loses a cancel that lands as the send completes.
            while not reader.done():
                reader.cancel()
                await asyncio.wait({reader}, timeout=0.02)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.aclose()

    async def close(self) -> None:
        if self._closed:
            return
        await self._stop_reader()
        self._inbox.end(discard=True)
        self._bus.forget(self)


class _StreamSubscription(_RedisSubscription):
    def __init__(
        self, bus: RedisEventBus, name: str, after: str | None, types: frozenset[str] | None
    ) -> None:
        super().__init__(bus, name, types)
        self._position = after

    async def _prepare(self) -> None:
        if self._position is None:
            last = await guarded(
                "subscribe", self._bus.client.xrevrange(self._bus.stream, "+", "-", count=1)
            )
            entry_id = last[0][0] if last else None
            self._position = "0-0" if entry_id is None else text(entry_id)

    async def _read(self, conn: aioredis.Redis) -> None:
        bus = self._bus
        position = self._position or "0-0"
        while not self._closed:
            reply = await conn.xread({bus.stream: position}, count=bus.batch, block=bus.block_ms)
            for entry_id, fields in stream_entries(reply):
                position = entry_id
                if self._passes_over(fields):
                    continue
                event = self._decode(entry_id, fields)
                if event is not None and self._wants(event):
                    await self._inbox.put((entry_id, event))


class _GroupSubscription(_RedisSubscription):
    def __init__(
        self,
        bus: RedisEventBus,
        name: str,
        group: str,
        after: str | None,
        types: frozenset[str] | None,
    ) -> None:
        super().__init__(bus, name, types)
        self._group = group
        self._start_id = after or "0"
        self.consumer = name
        # Read from Redis, not yet handed to the consumer; handed out and handled, to be
        # acknowledged; everything read and not yet acknowledged.
        self._unhanded: dict[str, None] = {}
        self._handled: list[str] = []
        self._current: list[str] = []
        self._held: set[str] = set()

    async def _prepare(self) -> None:
        try:
            await self._bus.client.xgroup_create(
                self._bus.stream, self._group, id=self._start_id, mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StateUnavailable("redis refused to create the consumer group") from exc
        except (RedisError, OSError) as exc:
            name = type(exc).__name__
            raise StateUnavailable(f"redis unavailable during subscribe ({name})") from exc

    async def __anext__(self) -> Item:
        [item] = await self._next(1)
        return item

    async def next_batch(self, limit: int) -> list[Item]:
        try:
            return await self._next(max(1, limit))
        except StopAsyncIteration:
            return []

    async def _next(self, limit: int) -> list[Item]:
        """What was handed out last counts as handled; then the next item(s)."""
        if self._closed:
            raise StopAsyncIteration
        await self._start()
        if self._current:
            self._handled.extend(self._current)
            self._current = []
        # Acknowledge in batches, and always before waiting: what was handled is settled
        # before this consumer idles.
        if self._handled and (len(self._handled) >= self._bus.batch or not len(self._inbox)):
            await self._ack()
        items = [await self._inbox.get()]
        if limit > 1:
            items.extend(self._inbox.take_ready(limit - 1))
        for entry_id, _ in items:
            self._unhanded.pop(entry_id, None)
        self._current = [entry_id for entry_id, _ in items]
        return items

    async def _ack(self) -> None:
        ids, self._handled = self._handled, []
        bus = self._bus
        await guarded("ack", bus.client.xack(bus.stream, self._group, *ids))
        self._held.difference_update(ids)

    async def _deliver(self, conn: aioredis.Redis, entries: list[Entry]) -> None:
        bus = self._bus
        passed: list[str] = []  # not wanted here: settled at once, in one XACK
        for entry_id, fields in entries:
            if self._passes_over(fields):
                passed.append(entry_id)
                continue
            event = self._decode(entry_id, fields)
            if event is None:
                # Unreadable by this version: settle it rather than hand it round forever.
                await conn.xack(bus.stream, self._group, entry_id)
                continue
            if not self._wants(event):
                passed.append(entry_id)
                continue
            self._unhanded[entry_id] = None
            self._held.add(entry_id)
            await self._inbox.put((entry_id, event))
        if passed:
            await conn.xack(bus.stream, self._group, *passed)

    async def _take_over(self, conn: aioredis.Redis) -> None:
        """Claim entries other consumers left pending for `claim_idle_s`; drop dead consumers."""
        bus = self._bus
        cursor = "0-0"
        while True:
            reply = await conn.xautoclaim(
                bus.stream, self._group, self.consumer, bus.claim_idle_ms, cursor, count=bus.batch
            )
            cursor = text(reply[0])
            # Entries this consumer already holds (a slow handler past the idle time) come
            # back too; handing them out again would only duplicate them.
            taken = [(text(i), f) for i, f in reply[1] if text(i) not in self._held]
            await self._deliver(conn, taken)
            if cursor == "0-0":
                break
        for consumer in await conn.xinfo_consumers(bus.stream, self._group):
            name = text(consumer["name"])
            idle = int(consumer["idle"])
            if name != self.consumer and not consumer["pending"] and idle > STALE_CONSUMER_MS:
                await conn.xgroup_delconsumer(bus.stream, self._group, name)

    async def _read(self, conn: aioredis.Redis) -> None:
        bus = self._bus
        loop = asyncio.get_running_loop()
        next_take_over = 0.0
        while not self._closed:
            if loop.time() >= next_take_over:
                await self._take_over(conn)
                next_take_over = loop.time() + bus.claim_idle_s
            reply = await conn.xreadgroup(
                self._group,
                self.consumer,
                {bus.stream: ">"},
                count=bus.batch,
                block=bus.block_ms,
            )
            await self._deliver(conn, stream_entries(reply))

    async def close(self) -> None:
        if self._closed:
            return
        await self._stop_reader()
        unhanded = list(self._unhanded)
        self._inbox.end(discard=True)
        self._bus.forget(self)
        try:
            await self._settle(unhanded)
        except StateUnavailable:
            log.warning("could not settle a group subscription on close; its events stay pending")

    async def _settle(self, unhanded: list[str]) -> None:
        bus = self._bus
        if self._handled:
            await self._ack()
        if unhanded:
            ids: list[StreamIdT] = list(unhanded)
            # Claiming them to ourselves with an old idle time makes them due for take-over.
            await guarded(
                "close",
                bus.client.xclaim(
                    bus.stream,
                    self._group,
                    self.consumer,
                    0,
                    ids,
                    idle=bus.claim_idle_ms,
                    justid=True,
                ),
            )
        pending = await guarded(
            "close",
            bus.client.xpending_range(
                bus.stream, self._group, "-", "+", 1, consumername=self.consumer
            ),
        )
        if not pending:
            await guarded(
                "close", bus.client.xgroup_delconsumer(bus.stream, self._group, self.consumer)
            )


class RedisEventBus(EventBus):
    """Events across nodes on a Redis stream. The bus owns `client` and closes it in `close()`."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "loopline:",
        maxlen: int = 100_000,
        node_id: str | None = None,
        block_s: float = 1.0,
        claim_idle_s: float = 30.0,
        batch: int = 64,
        buffer: int = 1_000,
    ) -> None:
        require_text_replies(client)
        if maxlen < 1 or batch < 1 or buffer < 1 or block_s <= 0 or claim_idle_s < 0:
            raise ValueError("maxlen, batch, buffer and block_s must be positive")
        self.client = client
        self.stream = prefix + "events"
        self.maxlen = maxlen
        self.node_id = node_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.block_s = block_s
        self.block_ms = max(1, round(block_s * 1000))
        self.claim_idle_s = claim_idle_s
        self.claim_idle_ms = round(claim_idle_s * 1000)
        self.batch = batch
        self.buffer = buffer
        self._subscriptions: set[_RedisSubscription] = set()
        self._numbers = itertools.count(1)
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "loopline:",
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.5,
        **options: Any,
    ) -> RedisEventBus:
        client = connect(url, socket_timeout=socket_timeout, connect_timeout=connect_timeout)
        return cls(client, prefix=prefix, **options)

    async def publish(self, event: Event) -> str:
        if self._closed:
            raise StateUnavailable("event bus closed")
        entry_id = await guarded(
            "publish",
            # "t" lets a subscriber pass over types it does not want without parsing "e".
            self.client.xadd(
                self.stream,
                {"e": dump_event(event), "t": event.type},
                maxlen=self.maxlen,
                approximate=True,
            ),
        )
        return text(entry_id)

    async def forget_calls(
        self, call_ids: set[str], sessions: set[str] | None = None, page: int = 1_000
    ) -> int:
        """XDEL every kept entry of these calls or web sessions, a page of the stream at a
        time."""
        wanted = call_ids | (sessions or set())
        if not wanted:
            return 0
        gone = 0
        start = "-"
        while True:
            reply = await guarded(
                "forget_calls", self.client.xrange(self.stream, min=start, count=page)
            )
            rows = cast(list[tuple[str, dict[str, str]]], reply or [])
            entries = [(text(entry_id), fields) for entry_id, fields in rows]
            doomed = [
                entry_id for entry_id, fields in entries if _owners(fields.get("e", "")) & wanted
            ]
            if doomed:
                gone += int(await guarded("forget_calls", self.client.xdel(self.stream, *doomed)))
            if len(entries) < page:
                return gone
            start = "(" + entries[-1][0]

    def subscribe(
        self,
        *,
        after: str | None = None,
        group: str | None = None,
        types: Collection[str] | None = None,
    ) -> Subscription:
        if self._closed:
            raise StateUnavailable("event bus closed")
        name = f"{self.node_id}-{next(self._numbers)}"
        wanted = None if types is None else frozenset(types)
        sub: _RedisSubscription
        if group is None:
            sub = _StreamSubscription(self, name, after, wanted)
        else:
            sub = _GroupSubscription(self, name, group, after, wanted)
        self._subscriptions.add(sub)
        return sub

    def forget(self, sub: _RedisSubscription) -> None:
        self._subscriptions.discard(sub)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            await sub.close()
        await self.client.aclose()
