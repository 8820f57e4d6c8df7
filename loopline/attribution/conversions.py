"""Conversion rules: which outcome earns which conversion, worth what, sent where. Pure."""

from __future__ import annotations

import hashlib

from loopline.attribution.facts import CallFacts
from loopline.config.attribution import AttributionConfig
from loopline.domain.outcomes import Conversion, Outcome


def conversion_id(call_id: str, name: str) -> str:
    """Stable: one call and one conversion name always give the same id, which every
    destination receives as its dedupe key (Meta `event_id`, Google `transaction_id`...)."""
    digest = hashlib.sha256(f"{call_id}\x00{name}".encode()).hexdigest()
    return f"cv_{digest[:32]}"


def conversions_for(
    outcome: Outcome, facts: CallFacts, config: AttributionConfig
) -> list[Conversion]:
    enabled = [d.name for d in config.destinations if d.enabled]
    journey = facts.journey
    click_ids = dict(journey.click_ids) if journey else {}
    extra = journey.extra if journey else {}
    out: list[Conversion] = []
    for rule in config.conversions:
        if rule.outcome != outcome.label:
            continue
        if outcome.source != "disposition" and outcome.confidence < rule.min_confidence:
            continue
        destinations = [d for d in (rule.destinations or enabled) if d in enabled]
        out.append(
            Conversion(
                id=conversion_id(facts.call_id, rule.name),
                call_id=facts.call_id,
                name=rule.name,
                value=outcome.value if outcome.value is not None else rule.value,
                currency=(outcome.currency or rule.currency).upper(),
                occurred_at=facts.ended_at or outcome.at,
                call_started_at=facts.received_at,
                caller_number=facts.caller_number,
                email=_text(extra.get("email")),
                click_ids=click_ids,
                client_id=_text(extra.get("client_id") or extra.get("ga_client_id")),
                fbc=_text(extra.get("fbc")) or _fbc_from(click_ids, facts),
                fbp=_text(extra.get("fbp")),
                campaign=facts.effective_campaign,
                source=facts.source,
                outcome=outcome.label,
                destinations=destinations,
            )
        )
    return out


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _fbc_from(click_ids: dict[str, str], facts: CallFacts) -> str | None:
    """Meta's documented `fbc` form, `fb.1.<ms of the click>.<fbclid>`, when only the fbclid
    is known (the time is the best known: the session's match, else the call)."""
    fbclid = click_ids.get("fbclid")
    if not fbclid:
        return None
    clicked = (
        facts.journey.matched_at
        if facts.journey and facts.journey.matched_at
        else facts.received_at
    )
    return f"fb.1.{int(clicked.timestamp() * 1000)}.{fbclid}"
