"""The Twilio adapter: webhook forms in, models out; answers in, TwiML out; signatures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from twilio.request_validator import RequestValidator

from loopline.domain.agents import Endpoint
from loopline.domain.calls import InboundCall
from loopline.providers.twilio import (
    CallStatusUpdate,
    DialStatusUpdate,
    SignatureChecker,
    TwilioAdapter,
    WebhookError,
    render_connect,
    render_enqueue,
    render_fallback,
    render_hangup,
    render_leave,
    render_redial,
    render_say_hangup,
    render_wait,
)

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
CALL_SID = "CA5f3c0a8b9d2e4f6a1b7c8d9e0f1a2b3c"
AGENT_LEG_SID = "CA0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b"
TOKEN = "12345678901234567890123456789012"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>'

# The incoming-call webhook, with the parameters Twilio documents for a voice request.
VOICE_FORM = {
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "ApiVersion": "2010-04-01",
    "CallSid": CALL_SID,
    "CallStatus": "ringing",
    "CallToken": "%7B%22parentCallInfoToken%22%3A%22eyJ%22%7D",
    "Called": "+18885550123",
    "CalledCountry": "US",
    "CalledState": "",
    "Caller": "+14155552671",
    "CallerCity": "SAN FRANCISCO",
    "CallerCountry": "US",
    "CallerName": "ALICE SMITH",
    "CallerState": "CA",
    "CallerZip": "94105",
    "Direction": "inbound",
    "From": "+14155552671",
    "FromCity": "SAN FRANCISCO",
    "FromCountry": "US",
    "FromState": "CA",
    "FromZip": "94105",
    "StirVerstat": "TN-Validation-Passed-A",
    "To": "+18885550123",
    "ToCity": "",
    "ToCountry": "US",
    "ToState": "",
    "ToZip": "",
}


def _without(form: dict[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != key}


def test_parse_voice() -> None:
    assert TwilioAdapter().parse_voice(VOICE_FORM, NOW) == InboundCall(
        provider="twilio",
        provider_call_id=CALL_SID,
        from_number="+14155552671",
        to_number="+18885550123",
        caller_name="ALICE SMITH",
        from_country="US",
        from_state="CA",
        received_at=NOW,
    )


def test_parse_voice_anonymous_caller_without_optional_fields() -> None:
    form = {"CallSid": CALL_SID, "From": "anonymous", "To": "+18885550123", "FromState": ""}
    call = TwilioAdapter().parse_voice(form, NOW)
    assert (call.from_number, call.caller_name, call.from_country, call.from_state) == (
        "anonymous",
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("form", "field"),
    [
        (_without(VOICE_FORM, "CallSid"), "CallSid"),
        (_without(VOICE_FORM, "From"), "From"),
        (_without(VOICE_FORM, "To"), "To"),
        ({**VOICE_FORM, "To": "   "}, "To"),
        ({**VOICE_FORM, "CallSid": "not-a-sid"}, "CallSid"),
        ({**VOICE_FORM, "CallSid": "CA../../etc"}, "CallSid"),
        ({**VOICE_FORM, "CallSid": "CA" + "a" * 63}, "CallSid"),
        ({**VOICE_FORM, "From": "+1415\r\n5552671"}, "From"),
        ({**VOICE_FORM, "CallerName": "x" * 300}, "CallerName"),
    ],
)
def test_parse_voice_rejects_bad_forms_naming_the_field_only(
    form: dict[str, str], field: str
) -> None:
    with pytest.raises(WebhookError) as caught:
        TwilioAdapter().parse_voice(form, NOW)
    assert caught.value.field == field
    assert str(caught.value) == f"webhook field {field} is missing or invalid"
    for value in form.values():
        if len(value) > 3:
            assert value not in str(caught.value)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            {"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "73"},
            CallStatusUpdate(call_sid=CALL_SID, status="completed", duration_s=73),
        ),
        (
            {"CallSid": CALL_SID, "CallStatus": "in-progress", "Timestamp": "Mon, 05 Jan 2026"},
            CallStatusUpdate(call_sid=CALL_SID, status="in-progress"),
        ),
        (
            {"CallSid": CALL_SID, "CallStatus": "no-answer", "CallDuration": "0"},
            CallStatusUpdate(call_sid=CALL_SID, status="no-answer", duration_s=0),
        ),
    ],
)
def test_parse_status(form: dict[str, str], expected: CallStatusUpdate) -> None:
    assert TwilioAdapter().parse_status(form) == expected


@pytest.mark.parametrize(
    ("status", "ended"),
    [("queued", False), ("ringing", False), ("in-progress", False), ("completed", True),
     ("busy", True), ("failed", True), ("canceled", True), ("no-answer", True)],
)  # fmt: skip
def test_status_ended(status: str, ended: bool) -> None:
    update = TwilioAdapter().parse_status({"CallSid": CALL_SID, "CallStatus": status})
    assert update.ended is ended


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"CallStatus": "completed"}, "CallSid"),
        ({"CallSid": CALL_SID}, "CallStatus"),
        ({"CallSid": CALL_SID, "CallStatus": "exploded"}, "CallStatus"),
        ({"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "-1"}, "CallDuration"),
        ({"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "1.5"}, "CallDuration"),
        ({"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "١٢"}, "CallDuration"),
    ],
)
def test_parse_status_rejects(form: dict[str, str], field: str) -> None:
    with pytest.raises(WebhookError) as caught:
        TwilioAdapter().parse_status(form)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("form", "expected", "connected"),
    [
        (
            {
                "CallSid": CALL_SID,
                "CallStatus": "in-progress",
                "DialCallStatus": "completed",
                "DialCallDuration": "184",
                "DialCallSid": AGENT_LEG_SID,
            },
            DialStatusUpdate(
                call_sid=CALL_SID,
                dial_status="completed",
                dial_duration_s=184,
                dial_call_sid=AGENT_LEG_SID,
            ),
            True,
        ),
        (
            {"CallSid": CALL_SID, "DialCallStatus": "no-answer", "DialCallSid": AGENT_LEG_SID},
            DialStatusUpdate(
                call_sid=CALL_SID, dial_status="no-answer", dial_call_sid=AGENT_LEG_SID
            ),
            False,
        ),
        (
            {"CallSid": CALL_SID, "DialCallStatus": "busy"},
            DialStatusUpdate(call_sid=CALL_SID, dial_status="busy"),
            False,
        ),
        (
            {"CallSid": CALL_SID, "DialCallStatus": "failed", "DialCallSid": ""},
            DialStatusUpdate(call_sid=CALL_SID, dial_status="failed"),
            False,
        ),
        (
            {"CallSid": CALL_SID, "DialCallStatus": "answered"},
            DialStatusUpdate(call_sid=CALL_SID, dial_status="answered"),
            True,
        ),
        (
            {"CallSid": CALL_SID, "DialCallStatus": "canceled"},
            DialStatusUpdate(call_sid=CALL_SID, dial_status="canceled"),
            False,
        ),
    ],
)
def test_parse_dial_status(
    form: dict[str, str], expected: DialStatusUpdate, connected: bool
) -> None:
    update = TwilioAdapter().parse_dial_status(form)
    assert update == expected
    assert update.connected is connected


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"DialCallStatus": "completed"}, "CallSid"),
        ({"CallSid": CALL_SID}, "DialCallStatus"),
        ({"CallSid": CALL_SID, "DialCallStatus": "ringing"}, "DialCallStatus"),
        ({"CallSid": CALL_SID, "DialCallStatus": "busy", "DialCallSid": "x y"}, "DialCallSid"),
        (
            {"CallSid": CALL_SID, "DialCallStatus": "completed", "DialCallDuration": "ten"},
            "DialCallDuration",
        ),
    ],
)
def test_parse_dial_status_rejects(form: dict[str, str], field: str) -> None:
    with pytest.raises(WebhookError) as caught:
        TwilioAdapter().parse_dial_status(form)
    assert caught.value.field == field


# --- signatures: the real RequestValidator signs, our checker verifies ---

WEBHOOK_URL = "https://node.example.com/twilio/voice?tenant=demo"
STATUS_FORM = {"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "73"}


def _sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


def test_signature_accepts_twilios_signature() -> None:
    signature = _sign(WEBHOOK_URL, VOICE_FORM)
    assert SignatureChecker(TOKEN).check(WEBHOOK_URL, VOICE_FORM, signature) is True


def test_signature_accepts_url_with_explicit_default_port() -> None:
    # Twilio sometimes signs with ":443" and sometimes without; both must pass.
    signature = _sign("https://node.example.com:443/twilio/voice?tenant=demo", STATUS_FORM)
    assert SignatureChecker(TOKEN).check(WEBHOOK_URL, STATUS_FORM, signature) is True


@pytest.mark.parametrize(
    ("url", "params", "signature"),
    [
        # Signed with another account's token.
        (WEBHOOK_URL, STATUS_FORM, _sign(WEBHOOK_URL, STATUS_FORM, token="f" * 32)),
        # A field changed after signing.
        (WEBHOOK_URL, {**STATUS_FORM, "CallDuration": "7300"}, _sign(WEBHOOK_URL, STATUS_FORM)),
        # A field added after signing.
        (WEBHOOK_URL, {**STATUS_FORM, "Extra": "1"}, _sign(WEBHOOK_URL, STATUS_FORM)),
        # Another URL (a signature replayed against another endpoint).
        ("https://node.example.com/twilio/status", STATUS_FORM, _sign(WEBHOOK_URL, STATUS_FORM)),
        # No signature, an empty one, garbage.
        (WEBHOOK_URL, STATUS_FORM, None),
        (WEBHOOK_URL, STATUS_FORM, ""),
        (WEBHOOK_URL, STATUS_FORM, "bm90IGEgc2lnbmF0dXJl"),
    ],
)
def test_signature_rejects(url: str, params: dict[str, str], signature: str | None) -> None:
    assert SignatureChecker(TOKEN).check(url, params, signature) is False


def test_signature_for_websocket_upgrade() -> None:
    url = "wss://node.example.com/twilio/media"
    signature = _sign(url, {})
    checker = SignatureChecker(TOKEN)
    assert checker.check_websocket(url, signature) is True
    assert checker.check(url, None, signature) is True
    assert checker.check_websocket("wss://node.example.com/twilio/other", signature) is False
    assert checker.check_websocket(url, None) is False


def test_signature_checker_needs_a_token() -> None:
    with pytest.raises(ValueError, match="auth_token"):
        SignatureChecker("")


# --- TwiML, compared as the exact strings Twilio receives ---


@pytest.mark.parametrize(
    ("endpoint", "leg"),
    [
        (Endpoint(kind="client", address="alice"), "<Client{cb}>alice</Client>"),
        (
            Endpoint(kind="sip", address="sip:alice@pbx.example.com"),
            "<Sip{cb}>sip:alice@pbx.example.com</Sip>",
        ),
        (Endpoint(kind="number", address="+14155550111"), "<Number{cb}>+14155550111</Number>"),
    ],
)
@pytest.mark.parametrize("with_callback", [True, False])
def test_render_connect(endpoint: Endpoint, leg: str, with_callback: bool) -> None:
    callback = "https://node.example.com/twilio/agent-status?call_id=call-1"
    cb = (
        ' statusCallback="https://node.example.com/twilio/agent-status?call_id=call-1"'
        ' statusCallbackEvent="answered completed"'
        if with_callback
        else ""
    )
    twiml = render_connect(
        stream_url="wss://node.example.com/twilio/media",
        call_id="call-1",
        endpoint=endpoint,
        action_url="https://node.example.com/twilio/dial-status?call_id=call-1&attempt=1",
        timeout_s=20,
        caller_id="+18885550123",
        status_callback_url=callback if with_callback else None,
    )
    assert twiml == (
        HEAD + "<Response>"
        "<Start>"
        '<Stream track="both_tracks" url="wss://node.example.com/twilio/media">'
        '<Parameter name="call_id" value="call-1" />'
        "</Stream>"
        "</Start>"
        '<Dial action="https://node.example.com/twilio/dial-status?call_id=call-1&amp;attempt=1"'
        ' callerId="+18885550123" timeout="20">' + leg.format(cb=cb) + "</Dial>"
        "</Response>"
    )


def test_render_connect_escapes_values() -> None:
    twiml = render_connect(
        stream_url="wss://n.example.com/twilio/media",
        call_id='a"<b>&c',
        endpoint=Endpoint(kind="client", address="<alice&bob>"),
        action_url="https://n.example.com/a",
        timeout_s=5,
        caller_id=None,
    )
    assert twiml == (
        HEAD + "<Response>"
        '<Start><Stream track="both_tracks" url="wss://n.example.com/twilio/media">'
        '<Parameter name="call_id" value="a&quot;&lt;b&gt;&amp;c" /></Stream></Start>'
        '<Dial action="https://n.example.com/a" timeout="5">'
        "<Client>&lt;alice&amp;bob&gt;</Client></Dial>"
        "</Response>"
    )


def test_render_redial_rings_without_a_second_stream() -> None:
    twiml = render_redial(
        endpoint=Endpoint(kind="sip", address="sip:bob@pbx.example.com"),
        action_url="https://n.example.com/twilio/dial-status?attempt=2",
        timeout_s=15,
        caller_id=None,
    )
    assert twiml == (
        HEAD + "<Response>"
        '<Dial action="https://n.example.com/twilio/dial-status?attempt=2" timeout="15">'
        "<Sip>sip:bob@pbx.example.com</Sip>"
        "</Dial>"
        "</Response>"
    )


@pytest.mark.parametrize("timeout_s", [0, -5])
def test_render_dial_rejects_bad_timeouts(timeout_s: int) -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        render_redial(
            endpoint=Endpoint(kind="client", address="a"),
            action_url="https://n/a",
            timeout_s=timeout_s,
            caller_id=None,
        )


def test_render_enqueue() -> None:
    assert render_enqueue(
        queue="sales", wait_url="https://n.example.com/wait", action_url="https://n.example.com/a"
    ) == (
        HEAD + "<Response>"
        '<Enqueue action="https://n.example.com/a" waitUrl="https://n.example.com/wait">'
        "sales</Enqueue>"
        "</Response>"
    )


def test_render_enqueue_with_stream() -> None:
    assert render_enqueue(
        queue="support",
        wait_url="https://n.example.com/wait",
        action_url="https://n.example.com/a",
        stream_url="wss://n.example.com/twilio/media",
        call_id="call-9",
    ) == (
        HEAD + "<Response>"
        '<Start><Stream track="both_tracks" url="wss://n.example.com/twilio/media">'
        '<Parameter name="call_id" value="call-9" /></Stream></Start>'
        '<Enqueue action="https://n.example.com/a" waitUrl="https://n.example.com/wait">'
        "support</Enqueue>"
        "</Response>"
    )


def test_render_enqueue_needs_stream_and_call_id_together() -> None:
    with pytest.raises(ValueError, match="together"):
        render_enqueue(queue="q", wait_url="w", action_url="a", stream_url="wss://n/m")


@pytest.mark.parametrize(
    ("message", "music", "body"),
    [
        (
            "All agents are busy.",
            "https://n.example.com/hold.mp3",
            '<Say>All agents are busy.</Say><Play loop="0">https://n.example.com/hold.mp3</Play>',
        ),
        (None, "https://n.example.com/hold.mp3", '<Play loop="0">https://n.example.com/hold.mp3</Play>'),
        ("Please hold.", None, '<Say>Please hold.</Say><Pause length="20" />'),
        (None, None, '<Pause length="20" />'),
        ("", None, '<Pause length="20" />'),
    ],
)  # fmt: skip
def test_render_wait(message: str | None, music: str | None, body: str) -> None:
    assert render_wait(message, music) == HEAD + "<Response>" + body + "</Response>"


@pytest.mark.parametrize(
    ("message", "body"),
    [
        (
            "We are connecting you.",
            "<Say>We are connecting you.</Say><Dial><Number>+18005550100</Number></Dial>",
        ),
        (None, "<Dial><Number>+18005550100</Number></Dial>"),
    ],
)
def test_render_fallback(message: str | None, body: str) -> None:
    assert render_fallback("+18005550100", message) == HEAD + "<Response>" + body + "</Response>"


def test_render_small_answers() -> None:
    assert render_hangup() == HEAD + "<Response><Hangup /></Response>"
    assert render_leave() == HEAD + "<Response><Leave /></Response>"
    assert render_say_hangup("Goodbye & thanks") == (
        HEAD + "<Response><Say>Goodbye &amp; thanks</Say><Hangup /></Response>"
    )
