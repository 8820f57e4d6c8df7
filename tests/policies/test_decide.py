"""decide(): the whole decision for one call, its reason sentence and its trail."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loopline.domain import AgentSnapshot, Candidate, Decision, Policy, Presence, Route, RouteStep
from loopline.domain.calls import Strategy
from loopline.policies import PolicySet, decide, rank

from .builders import NOW, agent, context

VIP_ROUTE = Route(
    queue="vip",
    skills={"billing": 3},
    priority=80,
    strategy=Strategy.BEST_MATCH,
    timeout_s=30,
    steps=[RouteStep(after_s=45, skills={"billing": 1}, priority_boost=10)],
)
POLICIES = PolicySet.compile(
    [
        Policy(name="churn", when="crm.churn_risk > 0.7", route=Route(queue="retention")),
        Policy(name="vip", when='crm.tier == "vip"', route=VIP_ROUTE),
    ],
    default=Route(queue="general", strategy=Strategy.LONGEST_IDLE),
)
TEAM = [
    agent("a1", skills={"billing": 4}, idle_s=312, close_rates={"cancel": 0.9}),
    agent("a2", skills={"billing": 3}, idle_s=30),
    agent("a3", skills={"billing": 5}, idle_s=600, presence=Presence.AWAY),
    agent("a4", skills={"billing": 4}, load=1),
    agent("a5", skills={"billing": 2}, idle_s=900),
    agent("a6", skills={"billing": 3}, idle_s=5, queues=["sales"]),
]


def test_vip_decision_fields_and_trail() -> None:
    call = context(crm={"tier": "vip", "churn_risk": 0.2}, intent="cancel", confidence=0.8)
    decision = decide(call, POLICIES, TEAM, NOW)
    assert isinstance(decision, Decision)
    assert decision.call_id == "call-1"
    assert (decision.policy, decision.expression) == ("vip", 'crm.tier == "vip"')
    assert (decision.queue, decision.priority, decision.strategy) == ("vip", 80, "best-match")
    assert (decision.timeout_s, decision.step, decision.decided_at) == (30, 0, NOW)
    assert decision.required_skills == {"billing": 3}
    # a1: .5*.8 + .3*.9 + .2*.52 = 0.774; a2: .5*.6 + .3*.5 + .2*.05 = 0.46
    assert [(c.agent_id, c.score, c.why) for c in decision.candidates] == [
        (
            "a1",
            pytest.approx(0.774),
            "billing 4>=3, match 0.77 (skill 0.80, close 0.90, idle 0.52)",
        ),
        (
            "a2",
            pytest.approx(0.46),
            "billing 3>=3, match 0.46 (skill 0.60, close 0.50, idle 0.05)",
        ),
    ]
    assert all(type(c) is Candidate for c in decision.candidates)
    assert decision.rejected == {
        "a3": "away",
        "a4": "full 1/1",
        "a5": "lacks billing>=3 (has 2)",
        "a6": "not in queue vip",
    }
    assert decision.reason == (
        'policy vip matched `crm.tier == "vip"`; 2 eligible, best-match chose a1 (0.77); 4 rejected'
    )


def test_step_relaxes_after_waiting() -> None:
    call = context(crm={"tier": "vip", "churn_risk": 0.2})
    decision = decide(call, POLICIES, TEAM, NOW, waited_s=50)
    assert (decision.step, decision.priority, decision.required_skills) == (1, 90, {"billing": 1})
    # a5 (billing 2) is eligible now; a1: .4 + .15 + .104, a5: .2 + .15 + .2, a2: .3 + .15 + .01
    assert [c.agent_id for c in decision.candidates] == ["a1", "a5", "a2"]
    assert decision.candidates[1].why == (
        "billing 2>=1, match 0.55 (skill 0.40, close 0.50, idle 1.00)"
    )
    assert decision.reason == (
        'policy vip matched `crm.tier == "vip"`; step 1 in force after 50s (from 45s); '
        "3 eligible, best-match chose a1 (0.65); 3 rejected"
    )


def test_default_route_reason_and_failures() -> None:
    call = context(crm={"tier": "gold"})  # no churn_risk: the churn rule fails, not the call
    decision = decide(call, POLICIES, TEAM, NOW)
    assert (decision.policy, decision.expression, decision.queue) == ("default", None, "general")
    assert [c.agent_id for c in decision.candidates] == ["a5", "a1", "a2"]
    assert decision.candidates[0].why == "idle 900s"
    assert decision.rejected == {"a3": "away", "a4": "full 1/1", "a6": "not in queue general"}
    assert decision.reason == (
        "no policy matched, default route; skipped on error: churn (no such key 'churn_risk'); "
        "3 eligible, longest-idle chose a5 (idle 900s); 3 rejected"
    )


def test_no_eligible_agent() -> None:
    call = context(crm={"tier": "vip", "churn_risk": 0.1})
    away = [agent("a1", presence=Presence.AWAY), agent("a2", presence=Presence.OFFLINE)]
    decision = decide(call, POLICIES, away, NOW)
    assert decision.candidates == []
    assert decision.rejected == {"a1": "away", "a2": "offline"}
    assert decision.reason == (
        'policy vip matched `crm.tier == "vip"`; no eligible agent in queue vip; 2 rejected'
    )


def test_no_agents_at_all() -> None:
    decision = decide(context(crm={"tier": "vip"}), POLICIES, [], NOW)
    assert decision.reason.endswith("no eligible agent in queue vip")


def test_sticky_prefers_last_agent() -> None:
    sticky = PolicySet.compile([], default=Route(queue="q", strategy=Strategy.STICKY))
    team = [agent("a1", idle_s=900), agent("a2", idle_s=1)]
    decision = decide(context(), sticky, team, NOW, last_agent_id="a2")
    assert [c.agent_id for c in decision.candidates] == ["a2", "a1"]
    assert decision.reason.endswith("sticky chose a2 (served this caller last)")


def test_limits_cap_candidates_and_rejected_with_full_count() -> None:
    crowd = [agent(f"a{i:03d}", idle_s=i) for i in range(40)] + [
        agent(f"z{i:03d}", presence=Presence.BUSY) for i in range(70)
    ]
    decision = decide(context(), PolicySet.compile([], Route(queue="q")), crowd, NOW)
    assert [c.agent_id for c in decision.candidates] == [f"a{i:03d}" for i in range(39, 29, -1)]
    assert list(decision.rejected) == [f"z{i:03d}" for i in range(50)]
    assert decision.reason.endswith(
        "40 eligible, longest-idle chose a039 (idle 39s); 70 rejected, first 50 listed"
    )
    wider = decide(
        context(),
        PolicySet.compile([], Route(queue="q")),
        crowd,
        NOW,
        limit=100,
        reject_limit=100,
    )
    assert (len(wider.candidates), len(wider.rejected)) == (40, 70)
    assert wider.reason.endswith("70 rejected")


def test_rank_reconsiders_a_queued_call() -> None:
    call = context(crm={"tier": "vip"})
    later = NOW + timedelta(seconds=60)
    ranking = rank(VIP_ROUTE, TEAM, call, later, waited_s=60)
    assert ranking.requirements.step_index == 1
    assert ranking.eligible_count == 3
    assert ranking.rejected_count == 3
    # idle is measured from `later`: a1 has been idle 372s by then; unknown intent: 0.5
    assert [c.agent_id for c in ranking.candidates] == ["a1", "a5", "a2"]
    assert ranking.candidates[0].score == pytest.approx(0.4 + 0.15 + 0.2 * 372 / 600)


def test_decision_round_trips_as_json() -> None:
    call = context(crm={"tier": "vip", "churn_risk": 0.2}, intent="cancel")
    decision = decide(call, POLICIES, TEAM, NOW)
    assert Decision.model_validate_json(decision.model_dump_json()) == decision


def _none_available(team: list[AgentSnapshot]) -> list[AgentSnapshot]:
    return [
        AgentSnapshot(agent=s.agent, state=s.state.model_copy(update={"presence": Presence.BUSY}))
        for s in team
    ]


def test_everyone_busy() -> None:
    decision = decide(context(crm={"tier": "vip"}), POLICIES, _none_available(TEAM), NOW)
    assert set(decision.rejected.values()) == {"busy"}
