"""The pydantic models every room shares. Imports nothing of ours."""

from loopline.domain.agents import Agent, AgentSnapshot, AgentState, Endpoint, Presence
from loopline.domain.calls import (
    CallContext,
    Caller,
    CallState,
    CallStatus,
    Candidate,
    Decision,
    InboundCall,
    QueuedCall,
    QueueStats,
    Reservation,
    Strategy,
    TimeFacts,
)
from loopline.domain.clock import Clock, FakeClock, SystemClock
from loopline.domain.events import Event, parse_event
from loopline.domain.intent import Intent, Signal
from loopline.domain.journey import JourneyMatch
from loopline.domain.routing import MatchWeights, Policy, Route, RouteStep

__all__ = [
    "Agent",
    "AgentSnapshot",
    "AgentState",
    "CallContext",
    "CallState",
    "CallStatus",
    "Caller",
    "Candidate",
    "Clock",
    "Decision",
    "Endpoint",
    "Event",
    "FakeClock",
    "InboundCall",
    "Intent",
    "JourneyMatch",
    "MatchWeights",
    "Policy",
    "Route",
    "RouteStep",
    "Presence",
    "QueueStats",
    "QueuedCall",
    "Reservation",
    "Signal",
    "Strategy",
    "SystemClock",
    "TimeFacts",
    "parse_event",
]
