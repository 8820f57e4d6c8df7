"""The embedded event bus: in-process fan-out with a short replay history.

Overflow policy: each subscriber has a bounded queue (default 10,000 events). Publishing never
waits for a subscriber: when one falls that far behind, its oldest event is dropped and
counted in `dropped` (on the subscription and, summed, on the bus). The bus is for live views
and records; nothing that must not be lost should depend on a subscriber keeping up.

Event ids are "<n>-0" with n counting up from 1, the shape of Redis stream ids, so an id from
either bus can be handed back as `after`. The last `history` events (default 2,000) are kept
for `subscribe(after=...)`.

Groups: each event goes to one member of a group, round-robin among its live members. With no
member subscribed, the group keeps events in a backlog (same bound, oldest dropped) for the
next member; a closing member hands its unread events back to the group. A group is created by
its first subscriber and then starts from everything the history still holds after `after`
(all of it by default), as a Redis consumer group created at id 0 does: so events published
while a node starts up, before its records writer subscribes, are not lost. Events are shared
objects, not copies: subscribers must treat them as read-only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Collection

from loopline.domain.events import Event
from loopline.state.base import EventBus, StateUnavailable, Subscription
from loopline.state.encoding import parse_event_id

Item = tuple[str, Event]


class MemorySubscription(Subscription):
    def __init__(
        self,
        bus: MemoryEventBus,
        limit: int,
        group: _Group | None,
        types: frozenset[str] | None = None,
    ) -> None:
        self._bus = bus
        self._limit = limit
        self._group = group
        self.types = types  # None: every type
        self._items: deque[Item] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0

    @property
    def room(self) -> bool:
        return len(self._items) < self._limit

    def offer(self, item: Item) -> None:
        if len(self._items) >= self._limit:
            self._items.popleft()
            self.dropped += 1
            self._bus.dropped += 1
        self._items.append(item)
        self._wakeup.set()

    def __aiter__(self) -> MemorySubscription:
        return self

    async def __anext__(self) -> Item:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._items:
                return self._items.popleft()
            self._wakeup.clear()
            await self._wakeup.wait()

    async def next_batch(self, limit: int) -> list[Item]:
        while not self._items:
            if self._closed:
                return []
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._closed:
            return []
        items = self._items
        return [items.popleft() for _ in range(min(max(1, limit), len(items)))]

    async def close(self) -> None:
        self.detach()

    def detach(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        unread = list(self._items)
        self._items.clear()
        if self._group is None:
            self._bus.forget(self)
        else:
            self._group.leave(self, unread)


class _Group:
    def __init__(
        self,
        bus: MemoryEventBus,
        limit: int,
        backlog: list[Item],
        types: frozenset[str] | None = None,
    ) -> None:
        self._bus = bus
        self._limit = limit
        self.types = types  # the types its first member asked for; None: every type
        self.members: list[MemorySubscription] = []
        self._turn = 0
        self._backlog: deque[Item] = deque()
        for item in backlog:
            self.offer(item)

    def offer(self, item: Item) -> None:
        members = self.members
        if not members:
            if len(self._backlog) >= self._limit:
                self._backlog.popleft()
                self._bus.dropped += 1
            self._backlog.append(item)
            return
        # Round-robin, skipping a member that is full while another has room.
        chosen = members[self._turn % len(members)]
        for step in range(len(members)):
            candidate = members[(self._turn + step) % len(members)]
            if candidate.room:
                chosen = candidate
                self._turn += step
                break
        self._turn += 1
        chosen.offer(item)

    def join(self, member: MemorySubscription) -> None:
        self.members.append(member)
        while self._backlog:
            member.offer(self._backlog.popleft())

    def leave(self, member: MemorySubscription, unread: list[Item]) -> None:
        self.members.remove(member)
        for item in unread:
            self.offer(item)


class MemoryEventBus(EventBus):
    def __init__(self, *, history: int = 2_000, queue_size: int = 10_000) -> None:
        if history < 0 or queue_size < 1:
            raise ValueError("history must be >= 0 and queue_size >= 1")
        self._seq = 0
        self._history: deque[tuple[int, Item]] = deque(maxlen=history)
        self._queue_size = queue_size
        self._subscribers: set[MemorySubscription] = set()
        self._groups: dict[str, _Group] = {}
        self._closed = False
        self.dropped = 0

    async def publish(self, event: Event) -> str:
        if self._closed:
            raise StateUnavailable("event bus closed")
        self._seq += 1
        item = (f"{self._seq}-0", event)
        self._history.append((self._seq, item))
        kind = event.type
        for subscriber in self._subscribers:
            if subscriber.types is None or kind in subscriber.types:
                subscriber.offer(item)
        for group in self._groups.values():
            if group.types is None or kind in group.types:
                group.offer(item)
        return item[0]

    async def forget_calls(self, call_ids: set[str], sessions: set[str] | None = None) -> int:
        wanted = call_ids | (sessions or set())

        def owned(event: Event) -> bool:
            return event.call_id in wanted or getattr(event, "session_id", None) in wanted

        kept = [entry for entry in self._history if not owned(entry[1][1])]
        gone = len(self._history) - len(kept)
        if gone:
            self._history.clear()
            self._history.extend(kept)
        return gone

    def _kept_after(self, after: str | None, types: frozenset[str] | None = None) -> list[Item]:
        start = 0 if after is None else parse_event_id(after)[0]
        return [
            item
            for seq, item in self._history
            if seq > start and (types is None or item[1].type in types)
        ]

    def subscribe(
        self,
        *,
        after: str | None = None,
        group: str | None = None,
        types: Collection[str] | None = None,
    ) -> Subscription:
        if self._closed:
            raise StateUnavailable("event bus closed")
        wanted = None if types is None else frozenset(types)
        if group is None:
            sub = MemorySubscription(self, self._queue_size, None, wanted)
            if after is not None:
                for item in self._kept_after(after, wanted):
                    sub.offer(item)
            self._subscribers.add(sub)
            return sub
        members = self._groups.get(group)
        if members is None:
            backlog = self._kept_after(after, wanted)
            members = self._groups[group] = _Group(self, self._queue_size, backlog, wanted)
        sub = MemorySubscription(self, self._queue_size, members, members.types)
        members.join(sub)
        return sub

    def forget(self, subscriber: MemorySubscription) -> None:
        self._subscribers.discard(subscriber)

    async def close(self) -> None:
        self._closed = True
        for subscriber in list(self._subscribers):
            subscriber.detach()
        for group in self._groups.values():
            for member in list(group.members):
                member.detach()
        self._groups.clear()
