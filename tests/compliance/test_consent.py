"""Consent tables: by the caller's state and the deployment's policy."""

from __future__ import annotations

import pytest

from loopline.compliance.consent import consent_for
from loopline.config.compliance import ConsentConfig
from loopline.domain.calls import Caller
from loopline.providers.phone import normalize_caller

LA = normalize_caller("+13105550123")  # California: all-party
NYC = normalize_caller("+12125550199")  # New York: one-party
ANON = normalize_caller("anonymous")
LONDON = normalize_caller("+442079460000")


@pytest.mark.parametrize(
    ("mode", "caller", "disclose", "stream", "jurisdiction"),
    [
        ("notify", LA, True, True, "CA"),
        ("notify", NYC, True, True, "NY"),
        ("notify", ANON, True, True, None),
        ("all-party", LA, True, True, "CA"),
        ("all-party", NYC, False, True, "NY"),
        ("all-party", ANON, True, True, None),
        ("all-party", LONDON, True, True, None),
        ("no-stream-all-party", LA, False, False, "CA"),
        ("no-stream-all-party", NYC, False, True, "NY"),
        ("no-stream-all-party", ANON, False, False, None),
        ("off", LA, False, True, "CA"),
    ],
)
def test_consent_by_state_and_policy(
    mode: str, caller: Caller, disclose: bool, stream: bool, jurisdiction: str | None
) -> None:
    decision = consent_for(ConsentConfig(mode=mode), caller)  # type: ignore[arg-type]
    assert (decision.disclose, decision.stream, decision.jurisdiction) == (
        disclose,
        stream,
        jurisdiction,
    )
    assert decision.basis
    assert (decision.disclosure is not None) is disclose


def test_provider_state_wins_and_lists_are_configurable() -> None:
    caller = normalize_caller("+12125550199", provider_state="WA")
    assert consent_for(ConsentConfig(mode="all-party"), caller).disclose is True
    narrow = ConsentConfig(mode="all-party", all_party_states=["FL"])
    assert consent_for(narrow, LA).disclose is False
    lenient = ConsentConfig(mode="all-party", unknown_location_is_all_party=False)
    assert consent_for(lenient, ANON).disclose is False


def test_basis_names_the_state_and_rule() -> None:
    decision = consent_for(ConsentConfig(mode="no-stream-all-party"), LA)
    assert decision.basis == "caller in CA: all-party-consent rules, no stream started"
