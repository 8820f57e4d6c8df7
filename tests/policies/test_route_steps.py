"""Routing steps relax a route as the call waits (Amazon Connect steps, Genesys bullseye)."""

from __future__ import annotations

import pytest

from loopline.domain import Route, RouteStep
from loopline.policies import Requirements, requirements_at

BULLSEYE = Route(
    queue="billing",
    skills={"billing": 4, "disputes": 3},
    languages=["es"],
    priority=50,
    steps=[
        RouteStep(after_s=30, skills={"billing": 3}, priority_boost=10),
        RouteStep(after_s=60, languages=["es", "en"], priority_boost=20),
        RouteStep(after_s=120, skills={}, languages=[], priority_boost=60),
    ],
)


@pytest.mark.parametrize(
    ("waited_s", "expected"),
    [
        (0, Requirements({"billing": 4, "disputes": 3}, ("es",), 50, 0)),
        (29.9, Requirements({"billing": 4, "disputes": 3}, ("es",), 50, 0)),
        (30, Requirements({"billing": 3}, ("es",), 60, 1)),
        (59, Requirements({"billing": 3}, ("es",), 60, 1)),
        # a step without skills keeps the route's own, not the previous step's
        (60, Requirements({"billing": 4, "disputes": 3}, ("es", "en"), 70, 2)),
        # `skills: {}` and `languages: []` accept anyone in the queue; priority stays <= 100
        (120, Requirements({}, (), 100, 3)),
        (10_000, Requirements({}, (), 100, 3)),
    ],
)
def test_step_in_force(waited_s: float, expected: Requirements) -> None:
    assert requirements_at(BULLSEYE, waited_s) == expected


def test_steps_in_any_order_pick_the_latest_reached() -> None:
    shuffled = BULLSEYE.model_copy(update={"steps": list(reversed(BULLSEYE.steps))})
    got = requirements_at(shuffled, 75)
    assert (got.skills, got.languages, got.priority, got.step_index) == (
        {"billing": 4, "disputes": 3},
        ("es", "en"),
        70,
        2,  # the index in the route as written
    )


def test_step_at_zero_applies_at_once() -> None:
    route = Route(queue="q", skills={"a": 5}, steps=[RouteStep(after_s=0, skills={"a": 2})])
    assert requirements_at(route, 0).skills == {"a": 2}
    assert requirements_at(route, 0).step_index == 1


def test_negative_boost_is_floored_at_zero() -> None:
    route = Route(queue="q", priority=5, steps=[RouteStep(after_s=10, priority_boost=-20)])
    assert requirements_at(route, 10).priority == 0


def test_route_without_steps() -> None:
    route = Route(queue="q", skills={"a": 2}, languages=["fr"], priority=7)
    for waited in (0, 30, 3600):
        assert requirements_at(route, waited) == Requirements({"a": 2}, ("fr",), 7, 0)
    assert requirements_at(route, 0).language_set == frozenset({"fr"})
