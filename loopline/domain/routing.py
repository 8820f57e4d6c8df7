"""Routing rules as configured: ordered policies, each a CEL `when` and a route."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from loopline.domain.calls import Strategy

MinProficiency = Annotated[int, Field(ge=1, le=5)]


class RouteStep(BaseModel):
    """After the call has waited `after_s`, these requirements replace the route's.

    Steps relax a route as the wait grows (Amazon Connect routing steps, Genesys bullseye rings):
    `skills: {}` accepts any agent of the queue.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_s: int = Field(ge=0)
    skills: dict[str, MinProficiency] | None = None
    languages: list[str] | None = None
    priority_boost: int = 0


class MatchWeights(BaseModel):
    """Weights of the best-match score; each term is normalised to 0..1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    proficiency: float = Field(default=0.5, ge=0)
    close_rate: float = Field(default=0.3, ge=0)
    idle: float = Field(default=0.2, ge=0)


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    queue: str = Field(min_length=1)
    skills: dict[str, MinProficiency] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=list)
    priority: int = Field(default=0, ge=0, le=100)
    strategy: Strategy = Strategy.LONGEST_IDLE
    timeout_s: int = Field(default=20, ge=5, le=600)
    steps: list[RouteStep] = Field(default_factory=list)
    weights: MatchWeights = Field(default_factory=MatchWeights)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    when: str = Field(min_length=1)
    route: Route
    description: str = ""
