"""Whether an agent may be offered a call now, and if not, why not."""

from __future__ import annotations

from collections.abc import Sequence

from loopline.domain.agents import Agent, AgentSnapshot, Presence
from loopline.policies.memo import RankMemo
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
    return configured_reason(snapshot.agent, requirements, queue)


def configured_reason(agent: Agent, requirements: Requirements, queue: str) -> str | None:
    """The part of `eligible` that reads only the agent's configuration."""
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
    agents: Sequence[AgentSnapshot],
    requirements: Requirements,
    queue: str,
    reject_limit: int,
    memo: RankMemo | None = None,
) -> tuple[list[AgentSnapshot], dict[str, str], int]:
    """(eligible agents in input order, reasons for the first `reject_limit` rejected, count of
    all rejected).

    This runs over every agent on every decision, so the test is inlined, cheapest check
    first (most agents fail at presence), and reason strings are made only for the agents
    whose reason is kept. With a memo, the configured part of the test (queue, skills,
    languages) is worked out once per agent and route, and then only looked up.
    """
    if memo is not None:
        return _partition_remembering(agents, requirements, queue, reject_limit, memo)
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


def _partition_remembering(
    agents: Sequence[AgentSnapshot],
    requirements: Requirements,
    queue: str,
    reject_limit: int,
    memo: RankMemo,
) -> tuple[list[AgentSnapshot], dict[str, str], int]:
    fit: list[AgentSnapshot] = []
    rejected: dict[str, str] = {}
    rejected_count = 0
    table = memo.table(("fit", queue, tuple(requirements.skills.items()), requirements.languages))
    available = _AVAILABLE
    keep = fit.append
    for snapshot in agents:
        state = snapshot.state
        why: object = None  # None here: the live state failed (its words come from `eligible`)
        if state.presence == available and len(state.reserved) + len(state.active) < state.capacity:
            agent = snapshot.agent
            entry = table.get(agent.id)
            if entry is not None and entry[0] is agent:
                why = entry[1]
            else:
                why = configured_reason(agent, requirements, queue)
                table[agent.id] = (agent, why)
            if why is None:
                keep(snapshot)
                continue
        rejected_count += 1
        if rejected_count <= reject_limit:
            reason = why if isinstance(why, str) else eligible(snapshot, requirements, queue)
            rejected[snapshot.agent.id] = reason or "ineligible"
    return fit, rejected, rejected_count
