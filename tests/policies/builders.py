"""Small builders for policy tests: agents, call contexts and routes with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loopline.domain import (
    Agent,
    AgentSnapshot,
    AgentState,
    CallContext,
    Caller,
    Endpoint,
    Intent,
    JourneyMatch,
    Presence,
    QueueStats,
    TimeFacts,
)

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def agent(
    agent_id: str,
    *,
    presence: Presence | str = Presence.AVAILABLE,
    skills: dict[str, int] | None = None,
    languages: list[str] | None = None,
    capacity: int = 1,
    load: int = 0,
    reserved: int = 0,
    queues: list[str] | None = None,
    idle_s: float | None = 60,
    offered_s: float | None = None,
    close_rates: dict[str, float] | None = None,
) -> AgentSnapshot:
    """An agent; `idle_s`/`offered_s` are seconds before NOW (None: never stamped)."""
    config = Agent(
        id=agent_id,
        name=agent_id.upper(),
        skills=skills or {},
        languages=languages if languages is not None else ["en"],
        capacity=capacity,
        endpoint=Endpoint(kind="client", address=agent_id),
        queues=queues or [],
        close_rates=close_rates or {},
    )
    state = AgentState(
        agent_id=agent_id,
        presence=Presence(presence),
        capacity=capacity,
        active=[f"{agent_id}-call-{i}" for i in range(load)],
        reserved=[f"{agent_id}-offer-{i}" for i in range(reserved)],
        idle_since=None if idle_s is None else NOW - timedelta(seconds=idle_s),
        last_offered_at=None if offered_s is None else NOW - timedelta(seconds=offered_s),
    )
    return AgentSnapshot(agent=config, state=state)


def context(
    *,
    crm: dict[str, Any] | None = None,
    intent: str = "unknown",
    confidence: float = 0.0,
    region: str | None = "CA",
    journey: JourneyMatch | None = None,
    hour: int = 10,
    in_business_hours: bool = True,
    queues: dict[str, QueueStats] | None = None,
    call_id: str = "call-1",
) -> CallContext:
    return CallContext(
        call_id=call_id,
        caller=Caller(number="+14155550123", valid=True, country="US", region=region),
        dialed="+18005550100",
        crm=crm or {},
        journey=journey,
        intent=Intent(name=intent, confidence=confidence),
        time=TimeFacts(
            hour=hour, weekday=0, in_business_hours=in_business_hours, iso=NOW.isoformat()
        ),
        queues=queues or {},
    )


def spring_journey() -> JourneyMatch:
    return JourneyMatch(session_id="s-1", confidence="active", campaign="spring", source="google")
