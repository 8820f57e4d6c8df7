"""Meta Conversions API: one server event per conversion, `action_source=phone_call`.

Events are built with the official `facebook-business` SDK's server-side classes (`Event`,
`UserData`, `CustomData`), whose `normalize()` hashes contact details with SHA-256 as Meta
specifies. We hand it the phone already in E.164 digits (read in the deployment's region when
the caller's number came without a country code, which the SDK cannot know) and the email
trimmed; `fbc` and `fbp` go unhashed. `event_id` is the conversion id, so Meta de-duplicates a
resend and a browser pixel event of the same id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from loopline.attribution.exporters.base import (
    Exporter,
    Judgement,
    Outgoing,
    Skip,
    batch_size,
    secret,
)
from loopline.attribution.identity import meta_email, meta_phone
from loopline.config.attribution import MetaDestination
from loopline.domain.outcomes import Conversion

GRAPH_URL = "https://graph.facebook.com"
# The Conversions API takes at most 1,000 events per request, none older than 7 days.
META_LIMIT = 1000
MAX_AGE = timedelta(days=7)
# Error codes Meta documents as transient (temporary issue, throttling).
_TRANSIENT_CODES = {1, 2, 4, 17, 32, 341, 613}


def server_event(
    conversion: Conversion, event_name: str, default_region: str = "US"
) -> dict[str, object]:
    """The event as the SDK normalises it: what goes in the request's `data` list."""
    from facebook_business.adobjects.serverside.action_source import (  # type: ignore[import-untyped]
        ActionSource,
    )
    from facebook_business.adobjects.serverside.custom_data import (  # type: ignore[import-untyped]
        CustomData,
    )
    from facebook_business.adobjects.serverside.event import Event  # type: ignore[import-untyped]
    from facebook_business.adobjects.serverside.user_data import (  # type: ignore[import-untyped]
        UserData,
    )

    phone = meta_phone(conversion.caller_number, default_region)
    email = meta_email(conversion.email)
    user = UserData(
        phones=[phone] if phone else None,
        emails=[email] if email else None,
        fbc=conversion.fbc,
        fbp=conversion.fbp,
        external_id=None,
    )
    custom = CustomData(value=conversion.value, currency=conversion.currency.lower())
    event = Event(
        event_name=event_name,
        event_time=int(conversion.occurred_at.timestamp()),
        event_id=conversion.id,
        user_data=user,
        custom_data=custom,
        action_source=ActionSource.PHONE_CALL,
    )
    normalised: dict[str, object] = event.normalize()
    return normalised


class MetaExporter(Exporter):
    kind = "meta"

    def __init__(
        self, destination: MetaDestination, env: Mapping[str, str], default_region: str = "US"
    ) -> None:
        self.name = destination.name
        self.destination = destination
        self._env = env
        self._region = default_region
        self.batch_limit = batch_size(destination.batch_size, META_LIMIT)

    def render(
        self, conversions: Sequence[Conversion], now: datetime
    ) -> tuple[list[Outgoing], list[Skip]]:
        skips: list[Skip] = []
        events: list[dict[str, object]] = []
        ids: list[str] = []
        for c in conversions:
            if now - c.occurred_at > MAX_AGE:
                skips.append(Skip(c.id, "older than Meta's 7 days"))
                continue
            if not (
                meta_phone(c.caller_number, self._region) or meta_email(c.email) or c.fbc or c.fbp
            ):
                skips.append(Skip(c.id, "no phone, email, fbc or fbp to match on"))
                continue
            events.append(
                server_event(c, self.destination.event_names.get(c.name, c.name), self._region)
            )
            ids.append(c.id)
        if not events:
            return [], skips
        token = secret(self._env, self.destination.access_token_env)
        body: dict[str, object] = {"data": events, "access_token": token}
        if self.destination.test_event_code:
            body["test_event_code"] = self.destination.test_event_code
        base = (self.destination.url or GRAPH_URL).rstrip("/")
        url = f"{base}/{self.destination.api_version}/{self.destination.pixel_id}/events"
        content = json.dumps(body, separators=(",", ":")).encode()
        return [
            Outgoing(tuple(ids), "POST", url, {"Content-Type": "application/json"}, content)
        ], skips

    def judge(self, status: int, body: bytes) -> Judgement:
        if 200 <= status < 300:
            return Judgement(accepted=True)
        try:
            error = json.loads(body).get("error", {})
        except (ValueError, AttributeError):
            error = {}
        if not isinstance(error, dict):
            error = {}
        transient = bool(error.get("is_transient")) or error.get("code") in _TRANSIENT_CODES
        retryable = transient or status in (408, 429) or status >= 500
        code = error.get("code")
        return Judgement(
            accepted=False,
            retryable=retryable,
            error=f"HTTP {status}" + (f" (Meta error {code})" if code is not None else ""),
        )
