"""The desktop and supervisor socket hubs: bus events out to the sockets on this node.

One bus subscription per node feeds every local socket. Each socket has its own bounded
outbox, so a slow desktop never holds up the bus or another desktop; one that falls too far
behind is closed (its client reconnects) rather than silently missing a screen-pop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from loopline.domain.events import (
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallTransferred,
    ComplianceFlagged,
    Event,
    SentimentUpdated,
    UtteranceEvent,
    dump_event,
)
from loopline.state.base import EventBus

log = logging.getLogger(__name__)


# Put in an outbox in place of everything it held when the socket fell too far behind.
TOO_SLOW = "\x00too-slow"


@dataclass(eq=False)
class Connection:
    """One socket's outbox, drained by the socket handler."""

    role: str
    subject: str
    outbox: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    overflowed: bool = False

    def offer(self, message: str) -> None:
        if self.overflowed:
            return
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:
            # Drop the backlog and tell the handler to close: the client reconnects and
            # resumes, which beats a desktop that silently misses a screen-pop.
            self.overflowed = True
            while not self.outbox.empty():
                self.outbox.get_nowait()
            self.outbox.put_nowait(TOO_SLOW)


def agent_of(event: Event) -> str | None:
    """The agent an event concerns, for routing it to that agent's desktop."""
    if isinstance(event, CallOffered | CallAnswered | AgentStateChanged):
        return event.agent_id
    if isinstance(event, CallTransferred):
        return event.from_agent_id
    if isinstance(event, CallEnded | UtteranceEvent | SentimentUpdated | ComplianceFlagged):
        return event.agent_id
    return None


class SocketHub:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._agents: dict[str, set[Connection]] = {}
        self._supervisors: set[Connection] = set()
        self.ready = asyncio.Event()
        self.delivered = 0

    def add_agent(self, agent_id: str) -> Connection:
        conn = Connection(role="agent", subject=agent_id)
        self._agents.setdefault(agent_id, set()).add(conn)
        return conn

    def add_supervisor(self, name: str) -> Connection:
        conn = Connection(role="supervisor", subject=name)
        self._supervisors.add(conn)
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

    def dispatch(self, event: Event) -> None:
        message = dump_event(event)
        agent_id = agent_of(event)
        if agent_id is not None:
            for conn in self._agents.get(agent_id, ()):
                conn.offer(message)
                self.delivered += 1
        for conn in self._supervisors:
            conn.offer(message)

    async def run(self) -> None:
        """Feed local sockets from the bus until cancelled."""
        async with self._bus.subscribe() as sub:
            self.ready.set()
            async for _event_id, event in sub:
                self.dispatch(event)
