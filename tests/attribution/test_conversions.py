"""Conversion rules: which outcome earns which conversion, with which identifiers."""

from __future__ import annotations

from datetime import datetime

import pytest

from loopline.attribution.conversions import conversion_id, conversions_for
from loopline.config.attribution import AttributionConfig
from loopline.domain.outcomes import Outcome
from tests.attribution.conftest import T0, facts

CONFIG = AttributionConfig.model_validate(
    {
        "conversions": [
            {"outcome": "sale", "name": "Phone sale", "value": 300, "currency": "USD"},
            {"outcome": "sale", "name": "Any lead", "value": 10, "destinations": ["crm"]},
            {"outcome": "quote_requested", "name": "Quote", "value": 25, "min_confidence": 0.7},
        ],
        "destinations": [
            {"kind": "webhook", "name": "crm", "url": "http://127.0.0.1:9/h"},
            {"kind": "meta", "name": "meta", "pixel_id": "1"},
            {"kind": "ga4", "name": "ga4", "measurement_id": "G-X", "enabled": False},
        ],
    }
)


def outcome(
    label: str, source: str = "rules", confidence: float = 0.8, value: float | None = None
) -> Outcome:
    return Outcome(
        call_id="c1",
        label=label,
        confidence=confidence,
        source=source,
        value=value,  # type: ignore[arg-type]
        currency="eur" if value else None,
        at=T0,
    )


@pytest.mark.parametrize(
    ("o", "expected"),
    [
        (
            outcome("sale"),
            [("Phone sale", 300.0, "USD", ["crm", "meta"]), ("Any lead", 10.0, "USD", ["crm"])],
        ),
        (
            outcome("sale", "disposition", 1.0, 450.0),
            [("Phone sale", 450.0, "EUR", ["crm", "meta"]), ("Any lead", 450.0, "EUR", ["crm"])],
        ),
        (outcome("quote_requested", confidence=0.6), []),  # not sure enough
        (outcome("quote_requested", "disposition", 1.0), [("Quote", 25.0, "USD", ["crm", "meta"])]),
        (outcome("support"), []),
    ],
)
def test_rules(o: Outcome, expected: list[tuple[str, float, str, list[str]]]) -> None:
    found = conversions_for(o, facts("c1"), CONFIG)
    assert [(c.name, c.value, c.currency, c.destinations) for c in found] == expected


def test_the_conversion_carries_what_the_destinations_match_on() -> None:
    f = facts(
        "c1",
        campaign="spring-sale",
        source="google",
        click_ids={"gclid": "G1", "fbclid": "F1"},
        extra={"client_id": "111.222", "fbp": "fb.1.1.2", "email": "a@b.co"},
        matched_at=datetime(2026, 1, 5, 14, 0, tzinfo=T0.tzinfo),
    )
    [c, _] = conversions_for(outcome("sale"), f, CONFIG)
    assert (
        c.id
        == conversion_id("c1", "Phone sale")
        == conversions_for(outcome("sale"), f, CONFIG)[0].id
    )
    assert (c.click_ids, c.client_id, c.fbp, c.email) == (
        {"gclid": "G1", "fbclid": "F1"},
        "111.222",
        "fb.1.1.2",
        "a@b.co",
    )
    assert c.fbc == "fb.1.1767621600000.F1"
    assert (c.caller_number, c.campaign, c.source) == ("+14155550100", "spring-sale", "google")
    assert c.occurred_at == f.ended_at and c.call_started_at == f.received_at
