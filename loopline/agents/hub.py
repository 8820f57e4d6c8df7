"""The desktop and supervisor socket hubs: bus events out to the sockets on this node.

One bus subscription per node feeds every local socket. Each socket has its own bounded
outbox, so a slow desktop never holds up the bus or another desktop; one that falls too far
behind is closed (its client reconnects and resumes) rather than silently missing a screen-pop.

**Resuming.** Every message that carries a bus event carries its id (`"id"`, the bus's own event
id, so it means the same on every node of one Redis). A client that reconnects with
`?after=<id>` gets what it missed, then the live stream, with nothing twice and nothing lost:

- The hub keeps the last `ring_size` events it dispatched (a node-level ring, shared by every
  socket: one copy, however many desktops). When `after` is inside the ring, the socket's
  outbox is filled from it in the same step that registers the socket for live events; no
  await in between, so no event can slip between the two.
- When `after` is older than the ring (a long drop, or a node that just started), the socket
  still registers at once, and its handler catches up from the bus itself
  (`EventBus.subscribe(after=...)`: the Redis stream replays; the memory bus keeps a short
  history), putting those older events in front of what the outbox already holds.

**Coalescing (supervisors).** A supervisor watches every call; at 200 live calls the interim
transcripts alone are hundreds of events a second. A supervisor's outbox keeps only the newest
pending interim transcript per call and track (a final supersedes it), the newest sentiment per
call and track (alerts are always kept), the newest state per agent and lag per node; finals,
call events and alerts are never dropped. The socket handler sends at most one frame per tick.
Agents get every event of their own calls, unmerged.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from loopline.domain.events import (
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallTransferred,
    ComplianceFlagged,
    Event,
    LeaseGranted,
    MediaLag,
    SentimentUpdated,
    SessionTouched,
    UtteranceEvent,
    dump_event,
)
from loopline.state.base import EventBus
from loopline.state.encoding import parse_event_id

log = logging.getLogger(__name__)


# Put in an outbox in place of everything it held when the socket fell too far behind.
TOO_SLOW = "\x00too-slow"

EventId = tuple[int, int]


def with_id(message: str, event_id: str) -> str:
    """The event's JSON with its bus id in front (ids are digits and a dash: no escaping)."""
    return '{"id":"' + event_id + '",' + message[1:]


def agent_of(event: Event) -> str | None:
    """The agent an event concerns, for routing it to that agent's desktop."""
    if isinstance(event, CallOffered | CallAnswered | AgentStateChanged):
        return event.agent_id
    if isinstance(event, CallTransferred):
        return event.from_agent_id
    if isinstance(event, CallEnded | UtteranceEvent | SentimentUpdated | ComplianceFlagged):
        return event.agent_id
    # Later event kinds (outcomes, QA) name their call's agent the same way.
    agent = getattr(event, "agent_id", None)
    return agent if isinstance(agent, str) else None


def supervisor_wants(event: Event) -> bool:
    # Lease traffic would swamp the monitor; touches are coalesced at the source (one per
    # session every few seconds) and merged per session below, so journeys show live.
    return not isinstance(event, LeaseGranted)


@dataclass(frozen=True)
class Merge:
    """How a supervisor outbox treats one event: replace the pending one with the same `key`;
    drop the pending one with key `supersedes`."""

    key: Hashable | None = None
    supersedes: Hashable | None = None


def merge_rule(event: Event) -> Merge:
    if isinstance(event, UtteranceEvent):
        partial = ("partial", event.call_id, event.track)
        if event.type == "utterance.partial":
            return Merge(key=partial)
        return Merge(supersedes=partial)
    if isinstance(event, SentimentUpdated) and not event.alert:
        return Merge(key=("sentiment", event.call_id, event.track))
    if isinstance(event, AgentStateChanged):
        return Merge(key=("agent", event.agent_id))
    if isinstance(event, MediaLag):
        return Merge(key=("lag", event.node))
    if isinstance(event, SessionTouched):
        return Merge(key=("session", event.session_id))
    return Merge()


@dataclass(eq=False)
class Connection:
    """One socket's pending messages, in order, drained by the socket handler.

    With `coalesce`, a message offered with a key replaces the pending message with that key
    (the newer goes to the back, behind anything offered in between).
    """

    role: str
    subject: str
    coalesce: bool = False
    limit: int = 1000
    overflowed: bool = False
    # Id of the newest bus event this connection was given; None until the first.
    last_id: str | None = None
    # Id of the first event given live or from the ring: a catch-up from the bus stops there.
    first_id: EventId | None = None
    # When the handler last took messages to send (time.monotonic()): the heartbeat's clock.
    last_active: float = field(default_factory=time.monotonic)
    _pending: OrderedDict[Hashable, str] = field(default_factory=OrderedDict)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self._pending)

    def offer(
        self,
        message: str,
        *,
        key: Hashable | None = None,
        supersedes: Hashable | None = None,
        event_id: str | None = None,
    ) -> None:
        if self.overflowed:
            return
        if self.coalesce and supersedes is not None:
            self._pending.pop(("k", supersedes), None)
        slot: Hashable
        if self.coalesce and key is not None:
            slot = ("k", key)
            self._pending.pop(slot, None)
        else:
            slot = next(self._numbers)
        if len(self._pending) >= self.limit:
            self._overflow()
            return
        self._pending[slot] = message
        if event_id is not None:
            self.last_id = event_id
        self._wakeup.set()

    def _overflow(self) -> None:
        # Drop the backlog and tell the handler to close: the client reconnects and resumes,
        # which beats a desktop that silently misses a screen-pop.
        self.overflowed = True
        self._pending.clear()
        self._pending[next(self._numbers)] = TOO_SLOW
        self._wakeup.set()

    def prepend(self, messages: list[str]) -> None:
        """Put older messages (a catch-up from the bus) in front of everything pending."""
        if self.overflowed or not messages:
            return
        if len(self._pending) + len(messages) > self.limit:
            self._overflow()
            return
        for message in reversed(messages):
            slot = next(self._numbers)
            self._pending[slot] = message
            self._pending.move_to_end(slot, last=False)
        self._wakeup.set()

    async def wait(self) -> None:
        """Until something is pending."""
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()

    def take(self) -> list[str]:
        """Everything pending, oldest first (TOO_SLOW alone when the socket fell behind)."""
        out = list(self._pending.values())
        self._pending.clear()
        self.last_active = time.monotonic()
        return out


@dataclass(frozen=True)
class _Kept:
    id: EventId
    event_id: str
    event: Event
    message: str  # the JSON with the id in front
    agent_id: str | None
    merge: Merge


class SocketHub:
    def __init__(self, bus: EventBus, *, ring_size: int = 5_000, outbox_limit: int = 1_000) -> None:
        self._bus = bus
        self._agents: dict[str, set[Connection]] = {}
        self._supervisors: set[Connection] = set()
        self._ring: deque[_Kept] = deque(maxlen=ring_size)
        self._outbox_limit = outbox_limit
        # Socket pacing: an idle socket gets a heartbeat every `heartbeat_s` (from `_beat`); a
        # supervisor socket gets at most one frame every `tick_s` (its handler paces itself).
        self.heartbeat_s = 10.0
        self.tick_s = 0.25
        self.ready = asyncio.Event()
        self.delivered = 0

    # -- sockets -----------------------------------------------------------------------------
    def add_agent(self, agent_id: str, *, after: str | None = None) -> Connection:
        """Register a desktop; with `after`, its outbox starts with what the ring holds since."""
        conn = Connection(role="agent", subject=agent_id, limit=self._outbox_limit)
        self._agents.setdefault(agent_id, set()).add(conn)
        if after is not None:
            self._replay(conn, after, lambda kept: kept.agent_id == agent_id)
        return conn

    def add_supervisor(self, name: str, *, after: str | None = None) -> Connection:
        conn = Connection(role="supervisor", subject=name, coalesce=True, limit=self._outbox_limit)
        self._supervisors.add(conn)
        if after is not None:
            self._replay(conn, after, lambda kept: supervisor_wants(kept.event))
        return conn

    def remove(self, conn: Connection) -> None:
        if conn.role == "agent":
            conns = self._agents.get(conn.subject)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._agents[conn.subject]
        else:
            self._supervisors.discard(conn)

    def agent_connected(self, agent_id: str) -> bool:
        return bool(self._agents.get(agent_id))

    @property
    def sockets(self) -> int:
        return len(self._supervisors) + sum(len(c) for c in self._agents.values())

    # -- resuming ----------------------------------------------------------------------------
    def resize_ring(self, size: int) -> None:
        """Keep the last `size` events (the newest of those held stay)."""
        self._ring = deque(self._ring, maxlen=max(0, size))

    def covers(self, after: str) -> bool:
        """Whether the ring alone holds everything after `after` that this node has seen."""
        return bool(self._ring) and parse_event_id(after) >= self._ring[0].id

    def _replay(self, conn: Connection, after: str, wanted: Callable[[_Kept], bool]) -> None:
        start = parse_event_id(after)
        for kept in self._kept_after(start):
            if wanted(kept):
                self._give(conn, kept)

    def _kept_after(self, start: EventId) -> Iterable[_Kept]:
        ring = self._ring
        if not ring or ring[-1].id <= start:
            return ()
        # Ids grow along the ring: walk back from the newest, the usual short way.
        first = len(ring)
        while first > 0 and ring[first - 1].id > start:
            first -= 1
        return itertools.islice(ring, first, None)

    def catch_up_messages(
        self, conn: Connection, events: list[tuple[str, Event]], until: EventId | None
    ) -> list[str]:
        """Messages for `conn` among events read back from the bus, before `until` (exclusive)."""
        out: list[str] = []
        for event_id, event in events:
            if until is not None and parse_event_id(event_id) >= until:
                break
            if conn.role == "agent":
                if agent_of(event) != conn.subject:
                    continue
            elif not supervisor_wants(event):
                continue
            out.append(with_id(dump_event(event), event_id))
        return out

    # -- dispatch ----------------------------------------------------------------------------
    def dispatch(self, event: Event, event_id: str | None = None) -> None:
        message = dump_event(event)
        agent_id = agent_of(event)
        merge = merge_rule(event)
        if event_id is None:
            kept = _Kept((0, 0), "", event, message, agent_id, merge)
        else:
            kept = _Kept(
                parse_event_id(event_id),
                event_id,
                event,
                with_id(message, event_id),
                agent_id,
                merge,
            )
            self._ring.append(kept)
        if agent_id is not None:
            for conn in self._agents.get(agent_id, ()):
                self._give(conn, kept)
                self.delivered += 1
        if supervisor_wants(event):
            for conn in self._supervisors:
                self._give(conn, kept)

    @staticmethod
    def _give(conn: Connection, kept: _Kept) -> None:
        if kept.event_id and conn.first_id is None:
            conn.first_id = kept.id
        conn.offer(
            kept.message,
            key=kept.merge.key,
            supersedes=kept.merge.supersedes,
            event_id=kept.event_id or None,
        )

    async def run(self) -> None:
        """Feed local sockets from the bus, and beat on idle ones, until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._beat(), name="hub-heartbeat")
            async with self._bus.subscribe() as sub:
                self.ready.set()
                async for event_id, event in sub:
                    self.dispatch(event, event_id)

    async def _beat(self) -> None:
        # One timer for every socket, rather than a timeout around each socket's every wait:
        # that would cost a timer per message on the fan-out path.
        while True:
            await asyncio.sleep(min(1.0, self.heartbeat_s / 2))
            self.beat(time.monotonic())

    def beat(self, now: float) -> None:
        """Offer a heartbeat to every socket idle for `heartbeat_s` or more."""
        conns = [*self._supervisors, *(c for cs in self._agents.values() for c in cs)]
        for conn in conns:
            if now - conn.last_active >= self.heartbeat_s:
                conn.last_active = now  # one beat per period, even before the handler sends it
                conn.offer(json.dumps({"type": "heartbeat", "last_id": conn.last_id}))
