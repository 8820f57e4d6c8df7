"""Filter agents to the eligible and order them by the route's strategy.

Used by `decide` and again by the router whenever a queued call is reconsidered. This loop
runs over every agent on every decision, so it builds no pydantic models per agent: only the
top `limit` candidates become `Candidate`s, and only the first `reject_limit` rejections keep
their reason (the rest are counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from loopline.domain.agents import AgentSnapshot
from loopline.domain.calls import CallContext, Candidate
from loopline.domain.routing import Route
from loopline.policies.eligibility import partition
from loopline.policies.memo import RankMemo
from loopline.policies.requirements import Requirements, requirements_at
from loopline.policies.strategies import RankFacts, order

CANDIDATE_LIMIT = 10
REJECT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Ranking:
    """Who may take the call, best first, and why the others may not."""

    requirements: Requirements
    candidates: list[Candidate]  # best first, at most `limit`
    rejected: dict[str, str]  # agent id -> why not; the first `reject_limit` only
    eligible_count: int
    rejected_count: int  # all rejections, including those not listed
    headline: str = ""  # the strategy's words for the first candidate


def rank(
    route: Route,
    agents: Sequence[AgentSnapshot],
    context: CallContext,
    now: datetime,
    waited_s: float = 0.0,
    last_agent_id: str | None = None,
    *,
    limit: int = CANDIDATE_LIMIT,
    reject_limit: int = REJECT_LIMIT,
    memo: RankMemo | None = None,
) -> Ranking:
    """Rank `agents` for `route` after `waited_s` seconds of waiting (its step in force).

    `last_agent_id` is the agent who last served this caller (the sticky strategy's pick);
    `context` gives the intent that best-match's close rates are read for.
    """
    requirements = requirements_at(route, waited_s)
    fit, rejected, rejected_count = partition(agents, requirements, route.queue, reject_limit, memo)
    facts = RankFacts(
        now=now,
        skills=requirements.skills,
        intent=context.intent.name,
        weights=route.weights,
        last_agent_id=last_agent_id,
    )
    ranked = order(route.strategy, fit, facts, limit)
    candidates = [
        Candidate(
            agent_id=item.snapshot.agent.id,
            score=item.score,
            why=_why(item.snapshot, requirements, item.headline),
        )
        for item in ranked
    ]
    return Ranking(
        requirements=requirements,
        candidates=candidates,
        rejected=rejected,
        eligible_count=len(fit),
        rejected_count=rejected_count,
        headline=ranked[0].headline if ranked else "",
    )


def _why(snapshot: AgentSnapshot, requirements: Requirements, headline: str) -> str:
    agent = snapshot.agent
    parts = [
        f"{name} {agent.skills.get(name, 0)}>={need}" for name, need in requirements.skills.items()
    ]
    if requirements.languages:
        spoken = [lang for lang in requirements.languages if lang in agent.languages]
        parts.append("speaks " + ", ".join(spoken))
    parts.append(headline)
    return ", ".join(parts)
