"""One routing decision: which policy applies, what it requires now, and who may take the call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from loopline.domain.agents import AgentSnapshot
from loopline.domain.calls import CallContext, Decision, Strategy
from loopline.policies.policy_set import Match, PolicySet
from loopline.policies.ranking import CANDIDATE_LIMIT, REJECT_LIMIT, Ranking, rank

# Strategies whose score reads well as a number in the reason; the others quote their words.
_NUMERIC = frozenset({Strategy.BEST_MATCH, Strategy.MOST_PROFICIENT})
_FAILURES_NAMED = 3


def decide(
    context: CallContext,
    policies: PolicySet,
    agents: Sequence[AgentSnapshot],
    now: datetime,
    *,
    waited_s: float = 0,
    last_agent_id: str | None = None,
    limit: int = CANDIDATE_LIMIT,
    reject_limit: int = REJECT_LIMIT,
) -> Decision:
    """Match the call against the policies and rank the agents for the route it gets.

    `candidates` holds the best `limit` eligible agents in order; `rejected` keeps the reason
    for the first `reject_limit` ineligible agents and the reason text gives the full count.
    """
    match = policies.match(context.cel_vars())
    route = match.route
    ranking = rank(
        route,
        agents,
        context,
        now,
        waited_s,
        last_agent_id,
        limit=limit,
        reject_limit=reject_limit,
        memo=policies.memo,
    )
    requirements = ranking.requirements
    return Decision(
        call_id=context.call_id,
        policy=match.policy,
        expression=match.expression,
        queue=route.queue,
        priority=requirements.priority,
        strategy=route.strategy,
        timeout_s=route.timeout_s,
        step=requirements.step_index,
        required_skills=dict(requirements.skills),
        candidates=ranking.candidates,
        rejected=ranking.rejected,
        reason=explain(match, ranking, waited_s),
        decided_at=now,
    )


def explain(match: Match, ranking: Ranking, waited_s: float = 0) -> str:
    """The decision as one sentence a supervisor can read."""
    route = match.route
    if match.expression is None:
        parts = ["no policy matched, default route"]
    else:
        parts = [f"policy {match.policy} matched `{match.expression}`"]
    if match.failures:
        named = ", ".join(f"{f.policy} ({f.error})" for f in match.failures[:_FAILURES_NAMED])
        more = len(match.failures) - _FAILURES_NAMED
        parts.append(f"skipped on error: {named}" + (f" and {more} more" if more > 0 else ""))
    step = ranking.requirements.step_index
    if step:
        after = route.steps[step - 1].after_s
        parts.append(f"step {step} in force after {waited_s:.0f}s (from {after}s)")
    if ranking.candidates:
        top = ranking.candidates[0]
        said = f"{top.score:.2f}" if route.strategy in _NUMERIC else ranking.headline
        parts.append(
            f"{ranking.eligible_count} eligible, {route.strategy.value} chose {top.agent_id} "
            f"({said})"
        )
    else:
        parts.append(f"no eligible agent in queue {route.queue}")
    if ranking.rejected_count:
        listed = len(ranking.rejected)
        shown = "" if listed == ranking.rejected_count else f", first {listed} listed"
        parts.append(f"{ranking.rejected_count} rejected{shown}")
    return "; ".join(parts)
