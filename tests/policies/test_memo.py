"""`RankMemo`: decisions come out the same with the per-agent memo as without it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from loopline.domain import AgentSnapshot, Route, Strategy
from loopline.policies import PolicySet, decide, rank
from loopline.policies.memo import RankMemo

from .builders import NOW, agent, context
from .test_ranking_properties import agents, routes


@settings(max_examples=200, deadline=None)
@given(
    team=agents(),
    others=agents(),
    route=routes,
    waited_s=st.floats(0, 200),
    intent=st.sampled_from(["cancel", "buy", "unknown"]),
)
def test_a_memo_never_changes_the_ranking(
    team: list[AgentSnapshot],
    others: list[AgentSnapshot],
    route: Route,
    waited_s: float,
    intent: str,
) -> None:
    memo = RankMemo()
    call = context(intent=intent)
    # Another team first: the memo then holds entries for reused ids made for other agents.
    rank(route, others, call, NOW, waited_s, memo=memo)
    plain = rank(route, team, call, NOW, waited_s, "a1")
    for _ in range(2):  # filling the memo, then reading it
        assert rank(route, team, call, NOW, waited_s, "a1", memo=memo) == plain


def test_a_reconfigured_agent_is_worked_out_again() -> None:
    route = Route(queue="sales", skills={"sales": 3}, strategy=Strategy.BEST_MATCH)
    policies = PolicySet.compile([], default=route)
    novice = agent("ana", skills={"sales": 2})
    expert = agent("ana", skills={"sales": 5}, close_rates={"unknown": 0.9})
    first = decide(context(), policies, [novice], NOW)
    assert first.candidates == [] and first.rejected == {"ana": "lacks sales>=3 (has 2)"}
    second = decide(context(), policies, [expert], NOW)
    assert [c.agent_id for c in second.candidates] == ["ana"]
    fresh = decide(context(), PolicySet.compile([], default=route), [expert], NOW)
    assert second.candidates == fresh.candidates
