"""What the router tells the provider to do with a call; providers render it (TwiML, NCCO)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from loopline.domain.agents import Endpoint
from loopline.domain.consent import ConsentDecision


class Connect(BaseModel):
    kind: Literal["connect"] = "connect"
    call_id: str
    agent_id: str
    endpoint: Endpoint
    timeout_s: int
    start_stream: bool = True
    consent: ConsentDecision | None = None  # the disclosure before the stream, when any


class Enqueue(BaseModel):
    kind: Literal["enqueue"] = "enqueue"
    call_id: str
    queue: str
    start_stream: bool = True
    consent: ConsentDecision | None = None


class Fallback(BaseModel):
    """Live state is unreachable: send the caller to the overflow number (never a 500)."""

    kind: Literal["fallback"] = "fallback"
    number: str | None
    message: str


class Hangup(BaseModel):
    kind: Literal["hangup"] = "hangup"
    message: str | None = None


Answer = Connect | Enqueue | Fallback | Hangup
