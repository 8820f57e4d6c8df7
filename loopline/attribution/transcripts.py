"""Where a call's transcript lines come from: the `utterance.final` events this node saw, and
the records' `utterances` table (written by the live-media room), whichever has them."""

from __future__ import annotations

import logging
from collections import OrderedDict

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from loopline.attribution.store import AttributionStore
from loopline.attribution.transcript import Line
from loopline.domain.events import UtteranceEvent

log = logging.getLogger(__name__)


class LineBuffer:
    """Final utterances per call, held until the call is classified; bounded both ways."""

    def __init__(self, max_calls: int = 5000, max_lines: int = 4000) -> None:
        self._calls: OrderedDict[str, list[Line]] = OrderedDict()
        self._max_calls = max_calls
        self._max_lines = max_lines
        self.dropped = 0

    def add(self, event: UtteranceEvent) -> None:
        if event.type != "utterance.final" or event.call_id is None:
            return
        lines = self._calls.get(event.call_id)
        if lines is None:
            lines = self._calls[event.call_id] = []
            while len(self._calls) > self._max_calls:
                self._calls.popitem(last=False)
                self.dropped += 1
        if len(lines) < self._max_lines:
            lines.append(
                Line(
                    speaker=event.speaker,
                    text=event.text,
                    start_ms=event.start_ms,
                    end_ms=event.end_ms,
                )
            )

    def take(self, call_id: str) -> list[Line]:
        return self._calls.pop(call_id, [])

    def peek(self, call_id: str) -> list[Line]:
        return list(self._calls.get(call_id, []))


async def stored_lines(store: AttributionStore, call_id: str) -> list[Line]:
    """The call's lines from the `utterances` table; none when there is no such table yet."""
    try:
        async with store.engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT speaker, text, start_ms, end_ms FROM utterances "
                    "WHERE call_id = :call_id ORDER BY start_ms"
                ),
                {"call_id": call_id},
            )
            return [
                Line(
                    speaker=str(r[0]),
                    text=str(r[1] or ""),
                    start_ms=int(r[2] or 0),
                    end_ms=int(r[3] or 0),
                )
                for r in rows
            ]
    except DBAPIError:
        return []
