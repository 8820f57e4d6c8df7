"""The Twilio adapter, sans-IO: webhook forms in, our models out; our answers in, TwiML out.

Nothing here opens a socket. The web room reads the request, asks `SignatureChecker` whether
Twilio sent it, hands the form to `TwilioAdapter` and returns what the `render_*` functions
produce. TwiML is built with the `twilio` library's `VoiceResponse`, never by hand, so every
value is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, Start, VoiceResponse

from loopline.domain.agents import Endpoint
from loopline.domain.calls import InboundCall

PROVIDER: Final = "twilio"

CallStatusValue = Literal[
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "no-answer",
    "canceled",
    "failed",
]
DialStatusValue = Literal["completed", "answered", "busy", "no-answer", "failed", "canceled"]

# Twilio's call SIDs are "CA" and 32 hex digits; we accept any short alphanumeric tail so a
# simulator's made-up ids pass, while nothing odd reaches state keys, URLs or logs.
_CALL_SID = re.compile(r"CA[0-9A-Za-z]{1,62}")
_FIELD_MAX = 256
_DIGITS = re.compile(r"[0-9*#w]{1,32}")
# The agent leg's progress that the router acts on (answered: the agent picked up).
_AGENT_LEG_EVENTS = "answered completed"
# Without hold music the wait URL would end at once and Twilio would fetch it again in a tight
# loop; a pause spaces those fetches out.
_WAIT_PAUSE_S = 20


class WebhookError(ValueError):
    """A webhook lacked a field or carried a bad one. The message names the field, never the
    value, so it is safe to log and to return in a 400."""

    def __init__(self, field: str, problem: str = "missing or invalid") -> None:
        super().__init__(f"webhook field {field} is {problem}")
        self.field = field


class CallStatusUpdate(BaseModel):
    """Twilio's call status callback (`statusCallback` of the number or call)."""

    model_config = ConfigDict(frozen=True)

    call_sid: str
    status: CallStatusValue
    duration_s: int | None = None  # CallDuration, sent with the final status only

    @property
    def ended(self) -> bool:
        return self.status in ("completed", "busy", "no-answer", "canceled", "failed")


class DialStatusUpdate(BaseModel):
    """What Twilio posts to a `<Dial action>` when the dialled leg ends or fails to connect."""

    model_config = ConfigDict(frozen=True)

    call_sid: str  # the caller's call
    dial_status: DialStatusValue
    dial_duration_s: int | None = None
    dial_call_sid: str | None = None  # the agent leg, when one was created

    @property
    def connected(self) -> bool:
        """Whether the agent picked up (then `completed` means the conversation is over)."""
        return self.dial_status in ("completed", "answered")


class TwilioAdapter:
    """Turns Twilio's webhook forms into our models; raises `WebhookError` on bad input."""

    provider: Final = PROVIDER

    def parse_voice(self, form: Mapping[str, str], now: datetime) -> InboundCall:
        """The incoming-call webhook (the number's voice URL)."""
        return InboundCall(
            provider=PROVIDER,
            provider_call_id=_call_sid(form, "CallSid"),
            from_number=_required(form, "From"),
            to_number=_required(form, "To"),
            caller_name=_optional(form, "CallerName"),
            from_country=_optional(form, "FromCountry"),
            from_state=_optional(form, "FromState"),
            received_at=now,
            digits=_digits(form),
        )

    def parse_status(self, form: Mapping[str, str]) -> CallStatusUpdate:
        return CallStatusUpdate(
            call_sid=_call_sid(form, "CallSid"),
            status=_choice(form, "CallStatus", get_args(CallStatusValue)),
            duration_s=_seconds(form, "CallDuration"),
        )

    def parse_dial_status(self, form: Mapping[str, str]) -> DialStatusUpdate:
        dial_call_sid = _optional(form, "DialCallSid")
        if dial_call_sid is not None and not _CALL_SID.fullmatch(dial_call_sid):
            raise WebhookError("DialCallSid")
        return DialStatusUpdate(
            call_sid=_call_sid(form, "CallSid"),
            dial_status=_choice(form, "DialCallStatus", get_args(DialStatusValue)),
            dial_duration_s=_seconds(form, "DialCallDuration"),
            dial_call_sid=dial_call_sid,
        )


class SignatureChecker:
    """Checks `X-Twilio-Signature` with the `twilio` library's `RequestValidator`.

    `url` must be the exact URL Twilio requested, as Twilio saw it (scheme and host of the public
    side of any proxy, query string included).
    """

    def __init__(self, auth_token: str) -> None:
        if not auth_token:
            raise ValueError("auth_token is empty")
        self._validator = RequestValidator(auth_token)

    def check(self, url: str, params: Mapping[str, str] | None, signature: str | None) -> bool:
        """A form POST: the signature covers the URL and every form field."""
        if not signature:
            return False
        return bool(self._validator.validate(url, dict(params or {}), signature))

    def check_websocket(self, url: str, signature: str | None) -> bool:
        """A media stream's upgrade request: Twilio signs the wss:// URL with no params."""
        return self.check(url, {}, signature)


def render_connect(
    *,
    stream_url: str,
    call_id: str,
    endpoint: Endpoint,
    action_url: str,
    timeout_s: int,
    caller_id: str | None,
    status_callback_url: str | None = None,
    disclosure: Disclosure | None = None,
) -> str:
    """Start the media stream (both tracks) and ring one agent.

    When the agent leg ends or is not answered, Twilio posts the dial status to `action_url`.
    A disclosure is spoken (or played) before the stream starts, so no word is transcribed
    before the caller has heard it.
    """
    response = VoiceResponse()
    _disclose(response, disclosure)
    response.append(_stream_start(stream_url, call_id))
    response.append(_dial(endpoint, action_url, timeout_s, caller_id, status_callback_url))
    return _xml(response)


def render_redial(
    *,
    endpoint: Endpoint,
    action_url: str,
    timeout_s: int,
    caller_id: str | None,
    status_callback_url: str | None = None,
) -> str:
    """Ring the next agent from a dial action; the stream started earlier still runs."""
    response = VoiceResponse()
    response.append(_dial(endpoint, action_url, timeout_s, caller_id, status_callback_url))
    return _xml(response)


def render_enqueue(
    *,
    queue: str,
    wait_url: str,
    action_url: str,
    stream_url: str | None = None,
    call_id: str | None = None,
    disclosure: Disclosure | None = None,
) -> str:
    """Put the caller in a Twilio queue, starting the media stream first when asked to (after
    the disclosure, when there is one)."""
    if (stream_url is None) != (call_id is None):
        raise ValueError("stream_url and call_id go together")
    response = VoiceResponse()
    _disclose(response, disclosure)
    if stream_url is not None and call_id is not None:
        response.append(_stream_start(stream_url, call_id))
    response.enqueue(queue, wait_url=wait_url, action=action_url)
    return _xml(response)


def render_redial_disclosed(
    *,
    endpoint: Endpoint,
    action_url: str,
    timeout_s: int,
    caller_id: str | None,
    disclosure: Disclosure | None,
) -> str:
    """Ring an agent with no stream (the consent policy forbids one), after any disclosure."""
    response = VoiceResponse()
    _disclose(response, disclosure)
    response.append(_dial(endpoint, action_url, timeout_s, caller_id, None))
    return _xml(response)


def render_greeting(*, message: str, action_url: str, timeout_s: int, continue_url: str) -> str:
    """The automated-decision opt-out greeting: one key within `timeout_s`.

    A key pressed posts `Digits` to `action_url`; silence falls through to the redirect, which
    posts the same webhook without them.
    """
    response = VoiceResponse()
    gather = Gather(num_digits=1, timeout=timeout_s, action=action_url, method="POST")
    gather.say(message)
    response.append(gather)
    response.redirect(continue_url, method="POST")
    return _xml(response)


def render_wait(message: str | None, hold_music_url: str | None) -> str:
    """What the queue's wait URL returns: a message, then music looping until dequeued."""
    response = VoiceResponse()
    if message:
        response.say(message)
    if hold_music_url:
        response.play(hold_music_url, loop=0)
    else:
        response.pause(length=_WAIT_PAUSE_S)
    return _xml(response)


def render_fallback(number: str, message: str | None) -> str:
    """The degraded answer: say why, then send the caller to the overflow number."""
    response = VoiceResponse()
    if message:
        response.say(message)
    dial = Dial()
    dial.number(number)
    response.append(dial)
    return _xml(response)


def render_hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return _xml(response)


def render_leave() -> str:
    """Take the caller out of the queue (the Enqueue action then runs)."""
    response = VoiceResponse()
    response.leave()
    return _xml(response)


def render_say_hangup(message: str) -> str:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return _xml(response)


class Disclosure(BaseModel):
    """What the caller hears before any media stream: words to say or audio to play."""

    model_config = ConfigDict(frozen=True)

    say: str | None = None
    play_url: str | None = None


def _disclose(response: VoiceResponse, disclosure: Disclosure | None) -> None:
    if disclosure is None:
        return
    if disclosure.play_url:
        response.play(disclosure.play_url)
    elif disclosure.say:
        response.say(disclosure.say)


def _stream_start(stream_url: str, call_id: str) -> Any:
    start = Start()
    stream = start.stream(url=stream_url, track="both_tracks")
    # Twilio repeats custom parameters in the stream's `start` message: this is how the media
    # socket learns which call it carries.
    stream.parameter(name="call_id", value=call_id)
    return start


def _dial(
    endpoint: Endpoint,
    action_url: str,
    timeout_s: int,
    caller_id: str | None,
    status_callback_url: str | None,
) -> Any:
    if timeout_s < 1:
        raise ValueError("timeout_s must be at least 1")
    dial = Dial(action=action_url, timeout=timeout_s, caller_id=caller_id)
    leg: dict[str, str] = {}
    if status_callback_url is not None:
        leg = {"status_callback": status_callback_url, "status_callback_event": _AGENT_LEG_EVENTS}
    if endpoint.kind == "client":
        dial.client(endpoint.address, **leg)
    elif endpoint.kind == "sip":
        dial.sip(endpoint.address, **leg)
    else:
        dial.number(endpoint.address, **leg)
    return dial


def _xml(response: Any) -> str:
    return str(response.to_xml())


def _required(form: Mapping[str, str], name: str) -> str:
    value = _optional(form, name)
    if value is None:
        raise WebhookError(name)
    return value


def _optional(form: Mapping[str, str], name: str) -> str | None:
    raw = form.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > _FIELD_MAX or not raw.isprintable():
        raise WebhookError(name)
    value = raw.strip()
    return value or None


def _digits(form: Mapping[str, str]) -> str | None:
    value = _optional(form, "Digits")
    if value is not None and not _DIGITS.fullmatch(value):
        raise WebhookError("Digits")
    return value


def _call_sid(form: Mapping[str, str], name: str) -> str:
    value = _required(form, name)
    if not _CALL_SID.fullmatch(value):
        raise WebhookError(name)
    return value


def _choice(form: Mapping[str, str], name: str, allowed: tuple[Any, ...]) -> Any:
    value = _required(form, name)
    if value not in allowed:
        raise WebhookError(name)
    return value


def _seconds(form: Mapping[str, str], name: str) -> int | None:
    value = _optional(form, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise WebhookError(name)
    return int(value)
