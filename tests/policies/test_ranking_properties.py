"""Properties of every decision, whatever the agents and the route."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.domain import AgentSnapshot, MatchWeights, Presence, Route, RouteStep, Strategy
from loopline.policies import PolicySet, decide, eligible, rank, requirements_at

from .builders import NOW, agent, context

SKILLS = ["billing", "sales", "tech"]
LANGUAGES = ["en", "es", "fr"]
QUEUES = ["q1", "q2"]

skill_maps = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=3)


@st.composite
def agents(draw: st.DrawFn) -> list[AgentSnapshot]:
    count = draw(st.integers(0, 25))
    result = []
    for i in range(count):
        capacity = draw(st.integers(1, 3))
        load = draw(st.integers(0, 4))
        reserved = draw(st.integers(0, load))
        result.append(
            agent(
                # Ids sometimes repeat, as a careless caller might send them.
                f"a{draw(st.integers(0, count + 2))}" if draw(st.booleans()) else f"u{i}",
                presence=draw(st.sampled_from(list(Presence))),
                skills=draw(skill_maps),
                languages=draw(st.lists(st.sampled_from(LANGUAGES), max_size=2, unique=True)),
                capacity=capacity,
                load=load - reserved,
                reserved=reserved,
                queues=draw(st.lists(st.sampled_from(QUEUES), max_size=2, unique=True)),
                idle_s=draw(st.none() | st.integers(-60, 5000)),
                offered_s=draw(st.none() | st.integers(0, 5000)),
                close_rates=draw(
                    st.dictionaries(st.sampled_from(["cancel", "buy"]), st.floats(0, 1))
                ),
            )
        )
    return result


routes = st.builds(
    Route,
    queue=st.sampled_from(QUEUES),
    skills=skill_maps,
    languages=st.lists(st.sampled_from(LANGUAGES), max_size=2, unique=True),
    strategy=st.sampled_from(list(Strategy)),
    steps=st.lists(
        st.builds(
            RouteStep,
            after_s=st.integers(0, 120),
            skills=st.none() | skill_maps,
            languages=st.none() | st.lists(st.sampled_from(LANGUAGES), max_size=2),
            priority_boost=st.integers(-10, 30),
        ),
        max_size=3,
    ),
    weights=st.builds(
        MatchWeights,
        proficiency=st.floats(0, 2),
        close_rate=st.floats(0, 2),
        idle=st.floats(0, 2),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    team=agents(),
    route=routes,
    waited_s=st.floats(0, 200),
    last=st.none() | st.sampled_from(["a0", "a1", "u0"]),
    limit=st.integers(1, 30),
    intent=st.sampled_from(["cancel", "buy", "unknown"]),
)
def test_candidates_are_eligible_sorted_and_never_over_capacity(
    team: list[AgentSnapshot],
    route: Route,
    waited_s: float,
    last: str | None,
    limit: int,
    intent: str,
) -> None:
    policies = PolicySet.compile([], default=route)
    decision = decide(
        context(intent=intent), policies, team, NOW, waited_s=waited_s, last_agent_id=last
    )
    requirements = requirements_at(route, waited_s)
    by_id: dict[str, list[AgentSnapshot]] = {}
    for snapshot in team:
        by_id.setdefault(snapshot.agent.id, []).append(snapshot)

    scores = [c.score for c in decision.candidates]
    assert scores == sorted(scores, reverse=True)
    for candidate in decision.candidates:
        fits = [
            s for s in by_id[candidate.agent_id] if eligible(s, requirements, route.queue) is None
        ]
        assert fits, candidate
        for snapshot in fits:
            state = snapshot.state
            assert state.presence == Presence.AVAILABLE
            assert len(state.reserved) + len(state.active) < state.capacity
    for agent_id, why in decision.rejected.items():
        assert any(eligible(s, requirements, route.queue) == why for s in by_id[agent_id])

    # Nobody eligible is left out but for the cap, and the cap keeps the best.
    ranking = rank(route, team, context(intent=intent), NOW, waited_s, last, limit=limit)
    eligible_count = sum(eligible(s, requirements, route.queue) is None for s in team)
    assert ranking.eligible_count == eligible_count
    assert ranking.rejected_count == len(team) - eligible_count
    assert len(ranking.candidates) == min(limit, eligible_count)
    _check_prefix(ranking.candidates, decision.candidates)


def _check_prefix(short: list[Any], long: list[Any]) -> None:
    common = min(len(short), len(long))
    assert short[:common] == long[:common]
