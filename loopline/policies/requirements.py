"""What a route asks of an agent after a given wait: its routing steps relax it over time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from loopline.domain.routing import Route

MAX_PRIORITY = 100


@dataclass(frozen=True, slots=True)
class Requirements:
    skills: Mapping[str, int]  # skill -> minimum proficiency
    languages: tuple[str, ...]  # the agent must speak one of these; empty = any
    priority: int
    step_index: int  # 0 = the route as written; n = `route.steps[n - 1]` is in force
    language_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "language_set", frozenset(self.languages))


def requirements_at(route: Route, waited_s: float) -> Requirements:
    """The route's requirements once the call has waited `waited_s` seconds.

    The step in force is the one with the largest `after_s` not beyond the wait (the last one
    in the list on a tie), so steps work whatever order they were written in. Its skills and
    languages replace the route's where given, and its boost is added to the route's priority
    (kept within 0..100, the range of `Route.priority`).
    """
    index = 0
    best_after = -1
    for position, step in enumerate(route.steps, start=1):
        if best_after <= step.after_s <= waited_s:
            index, best_after = position, step.after_s
    if index == 0:
        return Requirements(dict(route.skills), tuple(route.languages), route.priority, 0)
    step = route.steps[index - 1]
    skills = route.skills if step.skills is None else step.skills
    languages = route.languages if step.languages is None else step.languages
    priority = min(MAX_PRIORITY, max(0, route.priority + step.priority_boost))
    return Requirements(dict(skills), tuple(languages), priority, index)
