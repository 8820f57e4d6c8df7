"""Automated decision-making (California ADMT rules): who opted out, and the risk assessment's
inputs. Pure: values in, values out.

A caller opts out by pressing the configured key in the greeting, by a truthy field on their
CRM record, or by a consent flag their web session carries (an event the site sent, or a
field of the session). An opted-out call is routed by the deployment's default route with no
intent scoring, and its record says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from loopline.config.compliance import AdmtConfig
from loopline.domain.consent import OptOutVia
from loopline.domain.journey import JourneyMatch
from loopline.domain.routing import Policy, Route

REASON_PREFIX = "ADMT opt-out"
_TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on", "opt-out", "opted-out"})


def truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return False


def opt_out_via(
    config: AdmtConfig,
    digits: str | None,
    crm: Mapping[str, Any],
    journey: JourneyMatch | None,
) -> OptOutVia | None:
    """How the caller opted out (the greeting's key first), or None."""
    if config.dtmf_key is not None and digits and digits[0] == config.dtmf_key:
        return "dtmf"
    if truthy(crm.get(config.crm_flag)):
        return "crm"
    if journey is not None:
        extra = journey.extra
        events = extra.get("events")
        if truthy(extra.get(config.journey_flag)) or (
            isinstance(events, list) and config.journey_flag in events
        ):
            return "journey"
    return None


def opt_out_reason(via: OptOutVia) -> str:
    """The decision's reason text; `assessment` counts opt-outs by this prefix."""
    return f"{REASON_PREFIX} ({via}): default route, no intent scoring or automated ranking"


def via_of_reason(reason: str) -> str | None:
    if not reason.startswith(REASON_PREFIX + " ("):
        return None
    return reason[len(REASON_PREFIX) + 2 :].split(")", 1)[0]


class AutomatedDecision(BaseModel):
    name: str
    kind: str  # routing-policy | default-route | intent-scoring | agent-ranking
    rule: str | None = None  # the CEL `when`, for a policy
    strategy: str | None = None
    reads: list[str] = Field(default_factory=list)  # the call data it reads
    outcome: str  # what it decides


class Assessment(BaseModel):
    """The inputs a risk assessment of automated decision-making needs."""

    generated_at: str
    window_days: int
    decisions: list[AutomatedDecision]
    data_read: dict[str, list[str] | None]  # CEL variable -> fields read (None: all of it)
    opt_out_methods: list[str]
    calls: int
    opted_out: int
    opted_out_by: dict[str, int]
    opt_out_rate: float


def _fields(name: str, fields: frozenset[str] | None) -> str:
    return name if fields is None else ", ".join(f"{name}.{f}" for f in sorted(fields)) or name


def assessment(
    *,
    policies: Sequence[Policy],
    default_route: Route,
    projection: Mapping[str, frozenset[str] | None],
    policy_reads: Mapping[str, Mapping[str, frozenset[str] | None]],
    config: AdmtConfig,
    intent_sources: Sequence[str],
    calls: int,
    opted_out_by: Mapping[str, int],
    generated_at: str,
    window_days: int,
) -> Assessment:
    """Which decisions are automated, on what data, and how often callers opted out."""
    decisions: list[AutomatedDecision] = []
    for policy in policies:
        reads = policy_reads.get(policy.name, {})
        decisions.append(
            AutomatedDecision(
                name=policy.name,
                kind="routing-policy",
                rule=policy.when,
                strategy=str(policy.route.strategy),
                reads=[_fields(n, f) for n, f in sorted(reads.items())],
                outcome=f"queue {policy.route.queue}, priority {policy.route.priority}",
            )
        )
    decisions.append(
        AutomatedDecision(
            name="default",
            kind="default-route",
            strategy=str(default_route.strategy),
            outcome=f"queue {default_route.queue} (also every opted-out call)",
        )
    )
    if intent_sources:
        decisions.append(
            AutomatedDecision(
                name="intent",
                kind="intent-scoring",
                reads=sorted(intent_sources),
                outcome="the caller's likely intent, read by policies and best-match ranking",
            )
        )
    decisions.append(
        AutomatedDecision(
            name="ranking",
            kind="agent-ranking",
            reads=["agent skills, presence and idle time", "intent (best-match)", "last agent"],
            outcome="which eligible agent is offered the call first",
        )
    )
    methods: list[str] = []
    if config.dtmf_key is not None:
        methods.append(f"dtmf key {config.dtmf_key} in the greeting")
    methods.append(f"CRM field {config.crm_flag}")
    methods.append(f"web session flag {config.journey_flag}")
    total_out = sum(opted_out_by.values())
    return Assessment(
        generated_at=generated_at,
        window_days=window_days,
        decisions=decisions,
        data_read={
            name: None if fields is None else sorted(fields)
            for name, fields in sorted(projection.items())
        },
        opt_out_methods=methods,
        calls=calls,
        opted_out=total_out,
        opted_out_by=dict(sorted(opted_out_by.items())),
        opt_out_rate=round(total_out / calls, 4) if calls else 0.0,
    )
