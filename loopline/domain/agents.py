"""Agents: who they are (configuration) and where they stand (live state)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Proficiency = Annotated[int, Field(ge=1, le=5)]


class Presence(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    BUSY = "busy"
    WRAP_UP = "wrap-up"
    AWAY = "away"


class Endpoint(BaseModel):
    """Where Twilio rings the agent: a Twilio Client name, a SIP URI or a phone number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["client", "sip", "number"]
    address: str = Field(min_length=1)


class Agent(BaseModel):
    """An agent as configured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1)
    skills: dict[str, Proficiency] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=lambda: ["en"])
    capacity: int = Field(default=1, ge=1, le=20)
    endpoint: Endpoint
    # Queues this agent serves; empty means every queue whose requirements the agent meets.
    queues: list[str] = Field(default_factory=list)
    # Close rate per intent (0..1), used by best-match; learned figures replace these seeds.
    close_rates: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)


class AgentState(BaseModel):
    """An agent's live state, as the state store holds it."""

    agent_id: str
    presence: Presence = Presence.OFFLINE
    capacity: int = 1
    # Calls offered (reserved, not yet accepted) and calls in progress.
    reserved: list[str] = Field(default_factory=list)
    active: list[str] = Field(default_factory=list)
    presence_since: datetime | None = None
    # When the agent last became free (idle); longest-idle orders by this.
    idle_since: datetime | None = None
    # When the agent was last offered a call; round-robin orders by this.
    last_offered_at: datetime | None = None
    calls_today: int = 0

    @property
    def load(self) -> int:
        return len(self.reserved) + len(self.active)

    @property
    def has_room(self) -> bool:
        return self.presence == Presence.AVAILABLE and self.load < self.capacity


class AgentSnapshot(BaseModel):
    """What routing sees of one agent: configuration plus live state."""

    model_config = ConfigDict(frozen=True)

    agent: Agent
    state: AgentState
