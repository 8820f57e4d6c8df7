"""The deployment file (`config/loopline.yaml`) as pydantic models."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loopline.config.attribution import AttributionConfig
from loopline.config.compliance import ComplianceConfig
from loopline.config.journey import JourneyConfig
from loopline.domain.agents import Agent
from loopline.domain.routing import Policy, Route

E164 = Annotated[str, Field(pattern=r"^\+[1-9]\d{6,14}$")]
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentInfo(Strict):
    name: str = "Loopline"
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")


class BusinessHours(Strict):
    """Opening hours per weekday ("09:00-17:30"; absent = closed) in one timezone."""

    timezone: str = "UTC"
    days: dict[str, str] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _spans(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in _DAYS:
                raise ValueError(f"unknown day {day!r}: use {', '.join(_DAYS)}")
            if not _SPAN.match(span):
                raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM")
        return value

    def span(self, weekday: int) -> tuple[time, time] | None:
        raw = self.days.get(_DAYS[weekday])
        if raw is None:
            return None
        start, end = raw.split("-")
        end_t = time(23, 59, 59) if end == "24:00" else time.fromisoformat(end)
        return time.fromisoformat(start), end_t


class QueueConfig(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    description: str = ""
    service_level_s: int = Field(default=20, ge=1)
    max_wait_s: int = Field(default=900, ge=10)
    wait_message: str | None = None


class TrackingNumber(Strict):
    number: E164
    campaign: str
    source: str | None = None
    medium: str | None = None
    always_swap: bool = False  # swap it in for visits from its source/medium, even with a pool


class RoutingConfig(Strict):
    offer_timeout_s: int = Field(default=15, ge=3, le=120)
    fallback_number: E164 | None = None
    fallback_message: str = "All our lines are busy; connecting you to our overflow team."
    wait_message: str = "Thanks for calling. All our agents are busy; please hold."
    hold_music_url: str | None = None
    caller_id: E164 | None = None


class CrmConfig(Strict):
    file: str | None = None
    http_url: str | None = Field(default=None, description="template with {number}")
    http_budget_ms: int = Field(default=300, ge=10, le=5000)


RedactKind = Literal["card", "cvv", "expiry", "ssn", "dob", "email", "phone", "number"]
_REDACT_ALL: tuple[RedactKind, ...] = get_args(RedactKind)


class MediaConfig(Strict):
    """Live media: the speech model (a directory, tiny.en or base), its workers, redaction."""

    model: str = "tiny.en"
    workers: int = Field(default=2, ge=1, le=64)
    threads_per_worker: int = Field(default=1, ge=1, le=16)  # Whisper's threads in one pass
    pack_size: int = Field(default=8, ge=1, le=32)
    partial_interval_s: float = Field(default=1.0, ge=0.2, le=30)
    partial_min_s: float = Field(default=2.5, ge=0.2, le=30)  # no partial for shorter speech
    redact: list[RedactKind] = Field(default_factory=lambda: list(_REDACT_ALL))
    download: bool = False  # let faster-whisper fetch a model by name (never by default)
    lag_warning_s: float = Field(default=2.0, gt=0)
    preload: bool = False  # load the models at start instead of on the first stream
    # vader (the lexicon baseline) or classifier: a model from `loopline train sentiment`
    sentiment: Literal["vader", "classifier"] = "vader"
    sentiment_model: str = "var/models/sentiment.npz"


class SeedUser(Strict):
    """A sign-in account for a demo, made at start when missing, with the password from
    LOOPLINE_DEMO_PASSWORD (never from this file); real accounts: `loopline users add`."""

    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.@-]{1,63}$")
    role: Literal["agent", "supervisor", "admin"]
    agent_id: str | None = None  # agents: the configured agent whose calls they take
    name: str | None = None

    @model_validator(mode="after")
    def _agent_needs_id(self) -> SeedUser:
        if (self.role == "agent") != (self.agent_id is not None):
            raise ValueError("an agent user needs agent_id; other roles have none")
        return self


class DeploymentConfig(Strict):
    """Everything a deployment file holds. Secrets never live here: see `Settings`."""

    deployment: DeploymentInfo = Field(default_factory=DeploymentInfo)
    state: Literal["memory", "redis"] = "memory"
    records_url: str = "sqlite+aiosqlite:///var/loopline.db"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    queues: list[QueueConfig] = Field(min_length=1)
    agents: list[Agent] = Field(default_factory=list)
    policies: list[Policy] = Field(default_factory=list)
    default_route: Route
    tracking_numbers: list[TrackingNumber] = Field(default_factory=list)
    crm: CrmConfig = Field(default_factory=CrmConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    attribution: AttributionConfig = Field(default_factory=AttributionConfig)
    journey: JourneyConfig = Field(default_factory=JourneyConfig)
    users: list[SeedUser] = Field(default_factory=list)
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)

    @model_validator(mode="after")
    def _cross_references(self) -> DeploymentConfig:
        queues = {q.name for q in self.queues}
        problems: list[str] = []

        def dupes(items: list[str]) -> set[str]:
            seen: set[str] = set()
            return {i for i in items if i in seen or seen.add(i)}  # type: ignore[func-returns-value]

        for name in dupes([q.name for q in self.queues]):
            problems.append(f"queues: duplicate queue {name!r}")
        for agent_id in dupes([a.id for a in self.agents]):
            problems.append(f"agents: duplicate agent id {agent_id!r}")
        for pname in dupes([p.name for p in self.policies]):
            problems.append(f"policies: duplicate policy name {pname!r}")
        for number in dupes([t.number for t in self.tracking_numbers]):
            problems.append(f"tracking_numbers: duplicate number {number}")
        for i, p in enumerate(self.policies):
            if p.route.queue not in queues:
                problems.append(f"policies[{i}].route.queue: unknown queue {p.route.queue!r}")
        if self.default_route.queue not in queues:
            problems.append(f"default_route.queue: unknown queue {self.default_route.queue!r}")
        for i, a in enumerate(self.agents):
            for q in a.queues:
                if q not in queues:
                    problems.append(f"agents[{i}].queues: unknown queue {q!r}")
        # A seeded agent user whose agent is not configured is skipped at start, not refused:
        # trimming the agents list of a demo file should not mean editing its users too.
        for username in dupes([u.username for u in self.users]):
            problems.append(f"users: duplicate username {username!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
