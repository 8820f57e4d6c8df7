"""Governance rules as tables: the ADMT opt-out, redaction kinds and PHI, retention cut-offs,
data subjects, and the disclosure's place in the TwiML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loopline.compliance.admt import assessment, opt_out_via, truthy, via_of_reason
from loopline.compliance.consent import consent_for
from loopline.compliance.redaction import redact
from loopline.compliance.redaction_policy import PCI_KINDS, redaction_kinds
from loopline.compliance.retention import cutoffs
from loopline.compliance.subjects import Subject, SubjectError, context_matches, payload_matches
from loopline.config.compliance import AdmtConfig, ConsentConfig, RetentionConfig
from loopline.domain.agents import Endpoint
from loopline.domain.journey import JourneyMatch
from loopline.domain.routing import Policy, Route
from loopline.providers import twilio as tw
from loopline.providers.phone import normalize_caller

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEYED = AdmtConfig(dtmf_key="9")


def _journey(**extra: Any) -> JourneyMatch:
    return JourneyMatch(session_id="s-1", extra=extra)


@pytest.mark.parametrize(
    ("config", "digits", "crm", "journey", "via"),
    [
        (KEYED, "9", {}, None, "dtmf"),
        (KEYED, "98", {}, None, "dtmf"),
        (KEYED, "1", {}, None, None),
        (KEYED, None, {}, None, None),
        (AdmtConfig(), "9", {}, None, None),  # no key configured: digits mean nothing
        (KEYED, None, {"admt_opt_out": True}, None, "crm"),
        (KEYED, None, {"admt_opt_out": "yes"}, None, "crm"),
        (KEYED, None, {"admt_opt_out": "no"}, None, None),
        (KEYED, None, {"admt_opt_out": 0}, None, None),
        (AdmtConfig(crm_flag="no_ai"), None, {"no_ai": 1}, None, "crm"),
        (KEYED, None, {}, _journey(events=["pageview", "admt_opt_out"]), "journey"),
        (KEYED, None, {}, _journey(admt_opt_out=True), "journey"),
        (KEYED, None, {}, _journey(events=["quote_submit"]), None),
        (KEYED, "9", {"admt_opt_out": True}, _journey(admt_opt_out=True), "dtmf"),
    ],
)
def test_opt_out(
    config: AdmtConfig,
    digits: str | None,
    crm: dict[str, Any],
    journey: JourneyMatch | None,
    via: str | None,
) -> None:
    assert opt_out_via(config, digits, crm, journey) == via


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("TRUE", True), ("on", True), (1, True), ("", False), (None, False)],
)
def test_truthy(value: object, expected: bool) -> None:
    assert truthy(value) is expected


def test_the_routers_reason_reads_back() -> None:
    from loopline.router.lifecycle import _opt_out_reason

    assert via_of_reason(_opt_out_reason("crm") + "; longest idle") == "crm"
    assert via_of_reason("policy vip matched") is None


@pytest.mark.parametrize(
    ("configured", "phi", "must", "must_not"),
    [
        ((), False, PCI_KINDS, {"mrn", "health"}),
        (("email",), False, PCI_KINDS | {"email"}, {"health", "ssn"}),
        (("card",), True, PCI_KINDS | {"mrn", "health", "dob", "ssn"}, set()),
    ],
)
def test_pci_is_always_redacted(
    configured: tuple[str, ...], phi: bool, must: set[str], must_not: set[str]
) -> None:
    kinds = redaction_kinds(configured, phi=phi)
    assert must <= kinds
    assert not (must_not & kinds)


PHI = frozenset({"mrn", "health", "card", "cvv", "expiry", "dob"})


@pytest.mark.parametrize(
    ("text", "kinds", "expected"),
    [
        ("my member ID is AB 1234 5678 thanks", PHI, "my member ID is [MRN] thanks"),
        ("medical record number 00451", PHI, "medical record number [MRN]"),
        ("patient number one two three four five", PHI, "patient number [MRN]"),
        ("I was diagnosed with type two diabetes", PHI, "I was diagnosed with [HEALTH]"),
        ("she takes insulin daily", PHI, "she takes [HEALTH] daily"),
        ("I want to renew my policy", PHI, "I want to renew my policy"),
        ("she takes insulin daily", frozenset({"card"}), "she takes insulin daily"),
        ("card 4111 1111 1111 1111 and diabetes", PHI, "card [CARD] and [HEALTH]"),
    ],
)
def test_phi_redaction(text: str, kinds: frozenset[str], expected: str) -> None:
    assert redact(text, kinds=kinds)[0].text == expected


def test_retention_cutoffs() -> None:
    config = RetentionConfig(transcripts_days=30, audit_days=None)
    cut = cutoffs(config, NOW)
    assert cut["transcripts"] == NOW - timedelta(days=30)
    assert cut["calls"] == NOW - timedelta(days=730)
    assert cut["audit"] is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (Subject(phone="(408) 555-0188"), Subject(phone="+14085550188")),
        (Subject(phone="+44 20 7946 0000"), Subject(phone="+442079460000")),
        (Subject(email="  Ada@Example.COM "), Subject(email="ada@example.com")),
        (Subject(visitor_id="visitor-123456"), Subject(visitor_id="visitor-123456")),
    ],
)
def test_subjects_normalise(raw: Subject, expected: Subject) -> None:
    assert raw.normalised() == expected


@pytest.mark.parametrize(
    "raw",
    [Subject(phone="not a number"), Subject(email="nobody"), Subject(visitor_id="x y")],
)
def test_subjects_refused(raw: Subject) -> None:
    with pytest.raises(SubjectError) as caught:
        raw.normalised()
    assert (raw.phone or raw.email or raw.visitor_id or "") not in str(caught.value)


def test_a_subject_names_someone() -> None:
    with pytest.raises(ValueError, match="phone number"):
        Subject()


@pytest.mark.parametrize(
    ("subject", "context", "caller", "matches"),
    [
        (Subject(phone="+14085550188"), {}, "+14085550188", True),
        (Subject(phone="+14085550188"), {"caller": {"number": "+14085550188"}}, None, True),
        (Subject(phone="+14085550188"), {}, "+14085550199", False),
        (Subject(email="ada@example.com"), {"crm": {"email": "ADA@example.com"}}, None, True),
        (
            Subject(email="ada@example.com"),
            {"journey": {"extra": {"email": "ada@example.com"}}},
            None,
            True,
        ),
        (Subject(email="ada@example.com"), {"crm": {"note": "ada@example.com"}}, None, False),
        (
            Subject(visitor_id="v-12345678"),
            {"journey": {"extra": {"visitor_id": "v-12345678"}}},
            None,
            True,
        ),
        (Subject(visitor_id="v-12345678"), {"journey": None}, None, False),
    ],
)
def test_context_matches(
    subject: Subject, context: dict[str, Any], caller: str | None, matches: bool
) -> None:
    assert context_matches(subject, context, caller) is matches


def test_payload_matches() -> None:
    assert payload_matches(Subject(phone="+14085550188"), {"caller_number": "+14085550188"})
    assert payload_matches(Subject(email="a@b.co"), {"email": "A@B.co"})
    assert not payload_matches(Subject(email="a@b.co"), {"caller_number": "+14085550188"})


def test_digests_name_no_one() -> None:
    subject = Subject(phone="+14085550188", email="ada@example.com")
    label = subject.label()
    assert "4085550188" not in label and "ada" not in label
    assert [kind for kind, _ in subject.digests()] == ["phone", "email"]


def test_assessment_inputs() -> None:
    route = Route(queue="sales")
    vip = Policy(name="vip", when='crm.tier == "vip"', route=Route(queue="support"))
    report = assessment(
        policies=[vip],
        default_route=route,
        projection={"crm": frozenset({"tier"}), "intent": None},
        policy_reads={"vip": {"crm": frozenset({"tier"})}},
        config=KEYED,
        intent_sources=["journey.url"],
        calls=40,
        opted_out_by={"dtmf": 3, "crm": 1},
        generated_at=NOW.isoformat(),
        window_days=30,
    )
    assert [d.kind for d in report.decisions] == [
        "routing-policy",
        "default-route",
        "intent-scoring",
        "agent-ranking",
    ]
    assert report.decisions[0].reads == ["crm.tier"]
    assert report.data_read == {"crm": ["tier"], "intent": None}
    assert report.opted_out == 4 and report.opt_out_rate == 0.1
    assert report.opt_out_methods[0] == "dtmf key 9 in the greeting"


LA = normalize_caller("+13105550123")
NYC = normalize_caller("+12125550199")


@pytest.mark.parametrize(
    ("mode", "caller", "say", "stream"),
    [
        ("notify", NYC, True, True),
        ("all-party", LA, True, True),
        ("all-party", NYC, False, True),
        ("no-stream-all-party", LA, False, False),
        ("no-stream-all-party", NYC, False, True),
        ("off", LA, False, True),
    ],
)
def test_the_disclosure_comes_before_the_stream(
    mode: str, caller: Any, say: bool, stream: bool
) -> None:
    consent = consent_for(ConsentConfig(mode=mode), caller)  # type: ignore[arg-type]
    assert consent.stream is stream
    disclosure = tw.Disclosure(say=consent.disclosure) if consent.disclose else None
    endpoint = Endpoint(kind="client", address="ana")
    if consent.stream:
        twiml = tw.render_connect(
            stream_url="wss://n.example.com/twilio/media",
            call_id="CL1",
            endpoint=endpoint,
            action_url="https://n.example.com/twilio/dial-status?call_id=CL1",
            timeout_s=20,
            caller_id=None,
            disclosure=disclosure,
        )
    else:
        twiml = tw.render_redial_disclosed(
            endpoint=endpoint,
            action_url="https://n.example.com/twilio/dial-status?call_id=CL1",
            timeout_s=20,
            caller_id=None,
            disclosure=disclosure,
        )
    assert ("<Say>" in twiml) is say
    assert ("<Stream" in twiml) is stream
    if say and stream:
        assert twiml.index("<Say>") < twiml.index("<Start>") < twiml.index("<Dial")


def test_the_disclosure_can_be_audio() -> None:
    twiml = tw.render_enqueue(
        queue="support",
        wait_url="https://n/wait",
        action_url="https://n/exit",
        stream_url="wss://n/twilio/media",
        call_id="CL1",
        disclosure=tw.Disclosure(say="ignored", play_url="https://n/disclosure.mp3"),
    )
    assert twiml.index("<Play>https://n/disclosure.mp3</Play>") < twiml.index("<Start>")
    assert "<Say>" not in twiml


def test_the_greeting_gathers_one_key() -> None:
    twiml = tw.render_greeting(
        message="Press 9.",
        action_url="https://n/v?admt=1",
        timeout_s=3,
        continue_url="https://n/v?admt=1",
    )
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Gather action="https://n/v?admt=1" method="POST" numDigits="1" timeout="3">'
        "<Say>Press 9.</Say></Gather>"
        '<Redirect method="POST">https://n/v?admt=1</Redirect></Response>'
    )


@pytest.mark.parametrize(("digits", "ok"), [("9", True), ("*", True), ("12#", True), ("x", False)])
def test_gathered_digits_are_checked(digits: str, ok: bool) -> None:
    form = {"CallSid": "CA" + "1" * 32, "From": "+14085550188", "To": "+15005550100"}
    form["Digits"] = digits
    if ok:
        assert tw.TwilioAdapter().parse_voice(form, NOW).digits == digits
    else:
        with pytest.raises(tw.WebhookError, match="Digits"):
            tw.TwilioAdapter().parse_voice(form, NOW)
