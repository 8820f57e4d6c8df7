"""The durable records behind one interface: SQLite embedded, PostgreSQL at scale."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from loopline.domain.events import Event
from loopline.records.models import CallRecord


class RecordsUnavailable(RuntimeError):
    """The records database cannot be reached; the caller retries later, the node carries on."""


class Records(ABC):
    # The event types `apply` can keep anything of (None: it looks at every event). The
    # records writer subscribes to these alone, so the bus passes over the rest for it.
    event_types: frozenset[str] | None = None

    @abstractmethod
    async def start(self) -> None:
        """Connect and bring the schema to the newest migration."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise `RecordsUnavailable` when the database cannot be reached."""

    @abstractmethod
    async def apply(self, event_id: str, event: Event, *, source: str = "bus") -> bool:
        """Apply one bus event to the records, at most once per (`source`, `event_id`).

        Returns True when the event was applied now; False when it had been applied before or
        means nothing to the records (`agent.state`, an event with no call). Events of one call
        may come in any order (several nodes publish them); the record converges regardless.
        """

    async def apply_many(
        self, items: Sequence[tuple[str, Event]], *, source: str = "bus"
    ) -> list[bool]:
        """`apply` for each (event id, event) in turn, one result each; an implementation may
        write them in one transaction. The records come out as if applied one by one in
        order: a repeated id counts once, and events of a call may be in any order."""
        return [await self.apply(event_id, event, source=source) for event_id, event in items]

    @abstractmethod
    async def get_call(self, call_id: str) -> CallRecord | None:
        """The call with its decisions (by `seq`) and offers (in the order they were made)."""

    @abstractmethod
    async def list_calls(self, limit: int = 100, since: datetime | None = None) -> list[CallRecord]:
        """The newest calls first (by `received_at`, not before `since`), without trails."""

    @abstractmethod
    async def count_calls(self) -> int: ...
