"""Per-agent answers that depend only on configuration, kept between decisions.

Whether an agent serves a queue, has the skills and speaks a language a route asks for (and,
when not, the words that say so) is the same on every decision until the agent's configuration
changes. Working it out again for every agent of every call was the largest part of
eligibility; a `RankMemo` (one per `PolicySet`, so per loaded configuration) keeps it.
Entries are checked against the `Agent` object they were made for, so an agent reconfigured
under the same id is worked out afresh. Results never depend on whether a memo is used; only
the time does.
"""

from __future__ import annotations

from collections.abc import Hashable

from loopline.domain.agents import Agent


class RankMemo:
    __slots__ = ("_tables",)

    def __init__(self) -> None:
        # (kind, what was asked) -> agent id -> (the agent it was worked out for, the answer)
        self._tables: dict[Hashable, dict[str, tuple[Agent, object]]] = {}

    def table(self, key: Hashable) -> dict[str, tuple[Agent, object]]:
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = {}
        return table
