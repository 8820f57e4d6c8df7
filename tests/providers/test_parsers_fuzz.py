"""Properties of the parsers over arbitrary input: they answer or refuse, never crash."""

from __future__ import annotations

from datetime import UTC, datetime

import phonenumbers
from hypothesis import given
from hypothesis import strategies as st

from loopline.providers.phone import normalize_caller
from loopline.providers.twilio import TwilioAdapter, WebhookError

NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
FIELDS = ["CallSid", "From", "To", "CallerName", "FromCountry", "FromState", "CallStatus",
          "CallDuration", "DialCallStatus", "DialCallDuration", "DialCallSid"]  # fmt: skip
values = st.one_of(
    st.text(max_size=300),
    st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda tail: "CA" + tail),
    st.sampled_from(["completed", "busy", "in-progress", "+14155552671", "anonymous", "12"]),
)
forms = st.dictionaries(st.sampled_from(FIELDS), values)


@given(forms)
def test_twilio_parsers_answer_or_refuse(form: dict[str, str]) -> None:
    adapter = TwilioAdapter()
    for parse in (
        lambda: adapter.parse_voice(form, NOW),
        lambda: adapter.parse_status(form),
        lambda: adapter.parse_dial_status(form),
    ):
        try:
            parse()
        except WebhookError as exc:
            assert exc.field in FIELDS
            # The message names the field, never echoes a value.
            assert str(exc) == f"webhook field {exc.field} is missing or invalid"


@given(st.text(max_size=200), st.one_of(st.none(), st.text(max_size=50)))
def test_normalize_caller_never_raises(raw: str, state: str | None) -> None:
    caller = normalize_caller(raw, provider_state=state)
    assert len(caller.number) <= 64
    assert caller.number.isprintable()
    if caller.valid:
        assert caller.country is not None
        parsed = phonenumbers.parse(caller.number)
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == (
            caller.number
        )


@given(st.integers(200, 999), st.integers(200, 999), st.integers(0, 9999))
def test_nanp_numbers_keep_their_digits(area: int, exchange: int, line: int) -> None:
    raw = f"+1{area}{exchange}{line:04d}"
    caller = normalize_caller(raw)
    assert caller.number == raw
    if caller.valid and caller.country in ("US", "CA") and caller.region is not None:
        assert len(caller.region) == 2
