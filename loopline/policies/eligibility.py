"""Whether an agent may be offered a call now, and if not, why not."""

from __future__ import annotations

from collections.abc import Sequence

from loopline.domain.agents import AgentSnapshot, Presence
from loopline.policies.requirements import Requirements

_AVAILABLE = Presence.AVAILABLE


def eligible(snapshot: AgentSnapshot, requirements: Requirements, queue: str) -> str | None:
    """None when the agent may take the call; otherwise a short reason.

    Must agree with `partition`, which is the same test without the words.
    """
    state = snapshot.state
    if state.presence != _AVAILABLE:
        return str(state.presence)
    load = len(state.reserved) + len(state.active)
    if load >= state.capacity:
        return f"full {load}/{state.capacity}"
    agent = snapshot.agent
    if agent.queues and queue not in agent.queues:
        return f"not in queue {queue}"
    skills = agent.skills
    for name, need in requirements.skills.items():
        have = skills.get(name, 0)
        if have < need:
            return f"lacks {name}>={need} (has {have})" if have else f"lacks {name}>={need}"
    if requirements.languages and requirements.language_set.isdisjoint(agent.languages):
        return "speaks none of " + ", ".join(requirements.languages)
    return None


def partition(
    agents: Sequence[AgentSnapshot], requirements: Requirements, queue: str, reject_limit: int
) -> tuple[list[AgentSnapshot], dict[str, str], int]:
    """(eligible agents in input order, reasons for the first `reject_limit` rejected, count of
    all rejected).

    This runs over every agent on every decision, so the test is inlined, cheapest check
    first (most agents fail at presence), and reason strings are made only for the agents
    whose reason is kept.
    """
    fit: list[AgentSnapshot] = []
    rejected: dict[str, str] = {}
    rejected_count = 0
    needs = tuple(requirements.skills.items())
    languages = requirements.language_set if requirements.languages else None
    available = _AVAILABLE
    keep = fit.append
    for snapshot in agents:
        state = snapshot.state
        if state.presence == available and len(state.reserved) + len(state.active) < state.capacity:
            agent = snapshot.agent
            if not agent.queues or queue in agent.queues:
                skills = agent.skills
                for name, need in needs:
                    if skills.get(name, 0) < need:
                        break
                else:
                    if languages is None or not languages.isdisjoint(agent.languages):
                        keep(snapshot)
                        continue
        rejected_count += 1
        if rejected_count <= reject_limit:
            rejected[snapshot.agent.id] = eligible(snapshot, requirements, queue) or "ineligible"
    return fit, rejected, rejected_count
