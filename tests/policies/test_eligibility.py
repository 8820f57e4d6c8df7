"""Who may be offered a call, and the reason given for everyone else."""

from __future__ import annotations

import pytest

from loopline.domain import AgentSnapshot, Presence
from loopline.policies import Requirements, eligible
from loopline.policies.eligibility import partition

from .builders import agent

NEEDS = Requirements({"billing": 3}, ("en", "es"), 0, 0)


@pytest.mark.parametrize(
    ("snapshot", "reason"),
    [
        (agent("a", skills={"billing": 3}), None),
        (agent("a", skills={"billing": 5}, languages=["es"]), None),
        (agent("a", skills={"billing": 3}, capacity=2, load=1), None),
        (agent("a", skills={"billing": 3}, queues=["billing", "sales"]), None),
        (agent("a", presence=Presence.AWAY, skills={"billing": 3}), "away"),
        (agent("a", presence=Presence.OFFLINE), "offline"),
        (agent("a", presence=Presence.BUSY), "busy"),
        (agent("a", presence=Presence.WRAP_UP), "wrap-up"),
        (agent("a", skills={"billing": 3}, load=1), "full 1/1"),
        (agent("a", skills={"billing": 3}, capacity=3, load=2, reserved=1), "full 3/3"),
        (agent("a", skills={"billing": 3}, queues=["sales"]), "not in queue billing"),
        (agent("a", skills={"sales": 5}), "lacks billing>=3"),
        (agent("a", skills={"billing": 2}), "lacks billing>=3 (has 2)"),
        (agent("a", skills={"billing": 4}, languages=["fr", "de"]), "speaks none of en, es"),
        # the first failing check is the one reported
        (agent("a", presence=Presence.AWAY, load=1, skills={}), "away"),
        (agent("a", load=1, skills={}, queues=["sales"]), "full 1/1"),
    ],
)
def test_eligibility_reasons(snapshot: AgentSnapshot, reason: str | None) -> None:
    assert eligible(snapshot, NEEDS, "billing") == reason


@pytest.mark.parametrize(
    ("needs", "reason"),
    [
        (Requirements({}, (), 0, 0), None),
        (Requirements({"a": 1, "b": 5}, (), 0, 0), "lacks b>=5 (has 4)"),
        (Requirements({"c": 1}, (), 0, 0), "lacks c>=1"),
        (Requirements({}, ("en",), 0, 0), "speaks none of en"),
    ],
)
def test_requirement_variants(needs: Requirements, reason: str | None) -> None:
    snapshot = agent("a", skills={"a": 2, "b": 4}, languages=["pt"])
    assert eligible(snapshot, needs, "any") == reason


def _crowd() -> list[AgentSnapshot]:
    presences = list(Presence)
    return [
        agent(
            f"a{i:03d}",
            presence=presences[i % len(presences)],
            skills={"billing": 1 + i // 5 % 5},
            languages=["en"] if i % 3 else ["fr"],
            capacity=1 + i % 2,
            load=i % 3 % (1 + i % 2),
            queues=["sales"] if i % 7 == 0 else [],
        )
        for i in range(200)
    ]


@pytest.mark.parametrize("reject_limit", [0, 1, 50, 1000])
def test_partition_agrees_with_eligible(reject_limit: int) -> None:
    crowd = _crowd()
    fit, rejected, rejected_count = partition(crowd, NEEDS, "billing", reject_limit)
    reasons = {s.agent.id: eligible(s, NEEDS, "billing") for s in crowd}
    assert 0 < len(fit) < len(crowd)
    assert len(set(reasons.values())) > 5  # every kind of reason shows up
    assert [s.agent.id for s in fit] == [i for i, why in reasons.items() if why is None]
    everyone_rejected = {i: why for i, why in reasons.items() if why is not None}
    assert rejected_count == len(everyone_rejected)
    # the reasons kept are those of the first rejected agents, in input order
    assert list(rejected.items()) == list(everyone_rejected.items())[:reject_limit]
