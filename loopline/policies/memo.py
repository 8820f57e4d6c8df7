"""Per-agent answers that depend only on configuration, kept between decisions.

Whether an agent serves a queue, has the skills and speaks a language a route asks for, and the
part of its best-match score that does not move with time (proficiency and close rate), are the
same on every decision until the agent's configuration changes. Working them out again for
every agent of every call was most of `decide`'s time; a `RankMemo` (one per `PolicySet`, so
per loaded configuration) keeps them. Entries are checked against the `Agent` object they were
made for, so an agent reconfigured under the same id is worked out afresh. Results never
depend on whether a memo is used; only the time does.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from loopline.domain.agents import Agent

_V = TypeVar("_V")


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


def remembered(
    table: dict[str, tuple[Agent, object]], agent: Agent, work: Callable[[Agent], _V]
) -> _V:
    """`work(agent)`, from the table when it holds the answer for this very agent object."""
    entry = table.get(agent.id)
    if entry is not None and entry[0] is agent:
        return entry[1]  # type: ignore[return-value]
    value = work(agent)
    table[agent.id] = (agent, value)
    return value
