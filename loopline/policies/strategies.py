"""How eligible agents are ordered: one scorer per `Strategy`, higher scores first.

Each scorer gives every agent a score and a tie-break (both higher first); agent id settles
what is still tied, so the order never depends on the order agents were listed in. Scorers
work on the whole list at once because they run for every eligible agent of every decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple, Protocol

from loopline.domain.agents import AgentSnapshot
from loopline.domain.calls import Strategy
from loopline.domain.routing import MatchWeights

# An agent never stamped idle (or never offered a call) counts as having waited this long, so
# it ranks ahead of anyone with a timestamp; a finite number keeps scores JSON-safe.
FOREVER_S = 1e9
# Best-match counts idle time up to ten minutes; beyond that everyone is equally rested.
IDLE_CAP_S = 600.0
# Best-match's close-rate term for an intent the agent has no figure for.
UNKNOWN_CLOSE_RATE = 0.5
MAX_PROFICIENCY = 5.0

Key = tuple[float, float]  # (score, tie-break), both higher first


@dataclass(frozen=True, slots=True)
class RankFacts:
    """What scoring reads besides the agent: the same for every agent of one decision."""

    now: datetime
    skills: Mapping[str, int]  # required skill -> minimum proficiency
    intent: str
    weights: MatchWeights
    last_agent_id: str | None = None


class Ranked(NamedTuple):
    snapshot: AgentSnapshot
    score: float
    headline: str  # the strategy's part of the candidate's `why`


class Scorer(Protocol):
    def keys(self, agents: Sequence[AgentSnapshot], facts: RankFacts) -> list[Key]: ...

    def headline(self, snapshot: AgentSnapshot, facts: RankFacts, score: float) -> str: ...


def idle_seconds(snapshot: AgentSnapshot, now: datetime) -> float:
    since = snapshot.state.idle_since
    return FOREVER_S if since is None else (now - since).total_seconds()


def mean_proficiency(snapshot: AgentSnapshot, required: Mapping[str, int]) -> float:
    """Mean proficiency (1..5) over the required skills, or over all the agent's skills when
    the route requires none; 0 for an agent with no skills."""
    skills = snapshot.agent.skills
    if required:
        total = 0
        for name in required:
            total += skills.get(name, 0)
        return total / len(required)
    return sum(skills.values()) / len(skills) if skills else 0.0


def _idle_words(seconds: float) -> str:
    return "idle since start" if seconds >= FOREVER_S else f"idle {max(0.0, seconds):.0f}s"


class LongestIdle:
    def keys(self, agents: Sequence[AgentSnapshot], facts: RankFacts) -> list[Key]:
        now = facts.now
        return [(idle_seconds(a, now), 0.0) for a in agents]

    def headline(self, snapshot: AgentSnapshot, facts: RankFacts, score: float) -> str:
        return _idle_words(score)


class RoundRobin:
    """Whoever was offered a call longest ago goes next: round-robin with no cursor to keep."""

    def keys(self, agents: Sequence[AgentSnapshot], facts: RankFacts) -> list[Key]:
        now = facts.now
        keys: list[Key] = []
        for snapshot in agents:
            offered = snapshot.state.last_offered_at
            keys.append((FOREVER_S if offered is None else (now - offered).total_seconds(), 0.0))
        return keys

    def headline(self, snapshot: AgentSnapshot, facts: RankFacts, score: float) -> str:
        return "never offered" if score >= FOREVER_S else f"offered {max(0.0, score):.0f}s ago"


class MostProficient:
    """Highest mean proficiency in the required skills, then longest idle."""

    def keys(self, agents: Sequence[AgentSnapshot], facts: RankFacts) -> list[Key]:
        now, required = facts.now, facts.skills
        return [(mean_proficiency(a, required), idle_seconds(a, now)) for a in agents]

    def headline(self, snapshot: AgentSnapshot, facts: RankFacts, score: float) -> str:
        return f"proficiency {score:.2f}, {_idle_words(idle_seconds(snapshot, facts.now))}"


class Sticky:
    """The agent who last served this caller first, then longest idle."""

    def keys(self, agents: Sequence[AgentSnapshot], facts: RankFacts) -> list[Key]:
        now, last = facts.now, facts.last_agent_id
        return [(1.0 if a.agent.id == last else 0.0, idle_seconds(a, now)) for a in agents]

    def headline(self, snapshot: AgentSnapshot, facts: RankFacts, score: float) -> str:
        if score:
            return "served this caller last"
        return _idle_words(idle_seconds(snapshot, facts.now))


class BestMatch:
    """A weighted sum of three terms, each 0..1: proficiency in the required skills (all
    skills when none are required) / 5, the close rate for the call's intent, and idle time
    up to ten minutes. Ties go to the longest idle."""

    def terms(self, snapshot: AgentSnapshot, facts: RankFacts) -> tuple[float, float, float]:
        proficiency = mean_proficiency(snapshot, facts.skills) / MAX_PROFICIENCY
        close = snapshot.agent.close_rates.get(facts.intent, UNKNOWN_CLOSE_RATE)
        idle = min(max(idle_seconds(snapshot, facts.now), 0.0) / IDLE_CAP_S, 1.0)
        return proficiency, close, idle

    def keys(self, agents: Sequence[AgentSnapshot], facts: RankFacts) -> list[Key]:
        weights = facts.weights
        w_skill = weights.proficiency / MAX_PROFICIENCY
        w_close, w_idle = weights.close_rate, weights.idle
        now, required, intent = facts.now, facts.skills, facts.intent
        keys: list[Key] = []
        for snapshot in agents:
            since = snapshot.state.idle_since
            idle = FOREVER_S if since is None else (now - since).total_seconds()
            rest = 0.0 if idle <= 0.0 else (1.0 if idle >= IDLE_CAP_S else idle / IDLE_CAP_S)
            score = (
                w_skill * mean_proficiency(snapshot, required)
                + w_close * snapshot.agent.close_rates.get(intent, UNKNOWN_CLOSE_RATE)
                + w_idle * rest
            )
            # Rounded so that sums equal on paper tie in floats too, and go to the tie-break.
            keys.append((round(score, 9), idle))
        return keys

    def headline(self, snapshot: AgentSnapshot, facts: RankFacts, score: float) -> str:
        proficiency, close, idle = self.terms(snapshot, facts)
        return f"match {score:.2f} (skill {proficiency:.2f}, close {close:.2f}, idle {idle:.2f})"


SCORERS: Mapping[Strategy, Scorer] = MappingProxyType(
    {
        Strategy.LONGEST_IDLE: LongestIdle(),
        Strategy.MOST_PROFICIENT: MostProficient(),
        Strategy.ROUND_ROBIN: RoundRobin(),
        Strategy.STICKY: Sticky(),
        Strategy.BEST_MATCH: BestMatch(),
    }
)


def order(
    strategy: Strategy,
    agents: Sequence[AgentSnapshot],
    facts: RankFacts,
    limit: int | None = None,
) -> list[Ranked]:
    """The agents (assumed eligible) best first; only the first `limit` when given."""
    scorer = SCORERS[strategy]
    # The position keeps the comparison away from the snapshots when ids repeat.
    keyed = [
        (-score, -tie, snapshot.agent.id, position)
        for position, (snapshot, (score, tie)) in enumerate(
            zip(agents, scorer.keys(agents, facts), strict=True)
        )
    ]
    # A full sort beats heapq.nsmallest here: it runs in C, nsmallest partly in Python.
    keyed.sort()
    best = keyed if limit is None else keyed[:limit]
    return [
        Ranked(agents[position], -negated, scorer.headline(agents[position], facts, -negated))
        for negated, _tie, _id, position in best
    ]
