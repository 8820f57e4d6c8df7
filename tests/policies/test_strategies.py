"""Each strategy's order over eligible agents, its scores and its ties."""

from __future__ import annotations

import pytest

from loopline.domain import AgentSnapshot, MatchWeights, Strategy
from loopline.policies import RankFacts, order
from loopline.policies.strategies import FOREVER_S

from .builders import NOW, agent


def _facts(
    skills: dict[str, int] | None = None,
    intent: str = "cancel",
    weights: MatchWeights | None = None,
    last_agent_id: str | None = None,
) -> RankFacts:
    return RankFacts(
        now=NOW,
        skills=skills if skills is not None else {"billing": 3},
        intent=intent,
        weights=weights or MatchWeights(),
        last_agent_id=last_agent_id,
    )


def _ids(strategy: Strategy, agents: list[AgentSnapshot], facts: RankFacts) -> list[str]:
    return [r.snapshot.agent.id for r in order(strategy, agents, facts)]


@pytest.mark.parametrize(
    ("strategy", "agents", "facts", "expected"),
    [
        (
            Strategy.LONGEST_IDLE,
            [agent("a", idle_s=10), agent("b", idle_s=300), agent("c", idle_s=None)],
            _facts(),
            ["c", "b", "a"],  # never stamped idle counts as idle forever
        ),
        (
            Strategy.LONGEST_IDLE,
            [agent("b", idle_s=60), agent("a", idle_s=60), agent("c", idle_s=None)],
            _facts(),
            ["c", "a", "b"],  # equal idle: by id
        ),
        (
            Strategy.ROUND_ROBIN,
            [agent("a", offered_s=5), agent("b", offered_s=500), agent("c", offered_s=50)],
            _facts(),
            ["b", "c", "a"],
        ),
        (
            Strategy.ROUND_ROBIN,
            [agent("a", offered_s=5, idle_s=9999), agent("b", offered_s=None, idle_s=1)],
            _facts(),
            ["b", "a"],  # never offered goes first, idle time is irrelevant
        ),
        (
            Strategy.MOST_PROFICIENT,
            [
                agent("a", skills={"billing": 3, "sales": 5}, idle_s=900),
                agent("b", skills={"billing": 5}, idle_s=10),
                agent("c", skills={"billing": 4}, idle_s=20),
                agent("d", skills={"billing": 4}, idle_s=30),
            ],
            _facts(),
            ["b", "d", "c", "a"],  # only required skills count; ties by longest idle
        ),
        (
            Strategy.MOST_PROFICIENT,
            [agent("a", skills={"x": 2, "y": 4}), agent("b", skills={"x": 5}), agent("c")],
            _facts(skills={}),
            ["b", "a", "c"],  # nothing required: mean of all skills
        ),
        (
            Strategy.STICKY,
            [agent("a", idle_s=100), agent("b", idle_s=5), agent("c", idle_s=50)],
            _facts(last_agent_id="b"),
            ["b", "a", "c"],
        ),
        (
            Strategy.STICKY,
            [agent("a", idle_s=100), agent("c", idle_s=50)],
            _facts(last_agent_id="b"),  # last agent not among the eligible: longest idle
            ["a", "c"],
        ),
        (
            Strategy.STICKY,
            [agent("a", idle_s=100), agent("c", idle_s=50)],
            _facts(last_agent_id=None),
            ["a", "c"],
        ),
        (
            Strategy.BEST_MATCH,
            [
                agent("rested", skills={"billing": 3}, idle_s=600),
                agent("closer", skills={"billing": 3}, idle_s=0, close_rates={"cancel": 0.9}),
                agent("expert", skills={"billing": 5}, idle_s=0),
            ],
            _facts(),
            # rested: .5*.6 + .3*.5 + .2*1 = .65; closer: .3+.27 = .57; expert: .5+.15 = .65
            ["rested", "expert", "closer"],  # rested vs expert tie: longer idle first
        ),
    ],
)
def test_order(
    strategy: Strategy, agents: list[AgentSnapshot], facts: RankFacts, expected: list[str]
) -> None:
    assert _ids(strategy, agents, facts) == expected
    # the input order never matters
    assert _ids(strategy, list(reversed(agents)), facts) == expected


@pytest.mark.parametrize(
    ("snapshot", "facts", "score", "headline"),
    [
        (
            agent("a", skills={"billing": 4}, idle_s=300, close_rates={"cancel": 0.8}),
            _facts(),
            0.5 * 0.8 + 0.3 * 0.8 + 0.2 * 0.5,
            "match 0.74 (skill 0.80, close 0.80, idle 0.50)",
        ),
        (
            agent("a", skills={"billing": 4}, idle_s=300, close_rates={"buy": 0.8}),
            _facts(),
            0.5 * 0.8 + 0.3 * 0.5 + 0.2 * 0.5,  # unknown intent: 0.5
            "match 0.65 (skill 0.80, close 0.50, idle 0.50)",
        ),
        (
            agent("a", skills={"x": 1, "y": 5}, idle_s=None),
            _facts(skills={}, weights=MatchWeights(proficiency=1, close_rate=0, idle=0)),
            0.6,  # nothing required: mean of all skills / 5
            "match 0.60 (skill 0.60, close 0.50, idle 1.00)",
        ),
        (
            agent("a", skills={"billing": 3}, idle_s=-30),  # a clock ahead of ours
            _facts(weights=MatchWeights(proficiency=0, close_rate=0, idle=1)),
            0.0,
            "match 0.00 (skill 0.60, close 0.50, idle 0.00)",
        ),
    ],
)
def test_best_match_score(
    snapshot: AgentSnapshot, facts: RankFacts, score: float, headline: str
) -> None:
    [ranked] = order(Strategy.BEST_MATCH, [snapshot], facts)
    assert ranked.score == pytest.approx(score)
    assert ranked.headline == headline


@pytest.mark.parametrize(
    ("strategy", "snapshot", "facts", "score", "headline"),
    [
        (Strategy.LONGEST_IDLE, agent("a", idle_s=312), _facts(), 312.0, "idle 312s"),
        (Strategy.LONGEST_IDLE, agent("a", idle_s=None), _facts(), FOREVER_S, "idle since start"),
        (Strategy.ROUND_ROBIN, agent("a", offered_s=40), _facts(), 40.0, "offered 40s ago"),
        (Strategy.ROUND_ROBIN, agent("a"), _facts(), FOREVER_S, "never offered"),
        (
            Strategy.MOST_PROFICIENT,
            agent("a", skills={"billing": 4, "sales": 2}, idle_s=12),
            _facts(skills={"billing": 3, "sales": 1}),
            3.0,
            "proficiency 3.00, idle 12s",
        ),
        (
            Strategy.STICKY,
            agent("a", idle_s=5),
            _facts(last_agent_id="a"),
            1.0,
            "served this caller last",
        ),
        (Strategy.STICKY, agent("a", idle_s=5), _facts(last_agent_id="z"), 0.0, "idle 5s"),
    ],
)
def test_scores_and_headlines(
    strategy: Strategy, snapshot: AgentSnapshot, facts: RankFacts, score: float, headline: str
) -> None:
    [ranked] = order(strategy, [snapshot], facts)
    assert (ranked.score, ranked.headline) == (pytest.approx(score), headline)


@pytest.mark.parametrize("strategy", list(Strategy))
def test_limit_keeps_the_best(strategy: Strategy) -> None:
    agents = [
        agent(f"a{i}", skills={"billing": 1 + i % 5}, idle_s=i * 7, offered_s=i * 11)
        for i in range(30)
    ]
    full = order(strategy, agents, _facts(last_agent_id="a3"))
    assert order(strategy, agents, _facts(last_agent_id="a3"), limit=5) == full[:5]
    assert order(strategy, [], _facts()) == []


def test_duplicate_ids_do_not_break_ordering() -> None:
    twins = [agent("a", idle_s=10), agent("a", idle_s=10)]
    assert len(order(Strategy.LONGEST_IDLE, twins, _facts())) == 2
