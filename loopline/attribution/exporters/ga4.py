"""GA4 Measurement Protocol: the conversion as an event of the visitor's web stream.

A request carries one `client_id` (the visitor's, from the journey) and at most 25 events.
Event names are at most 40 characters of letters, digits and underscores, starting with a
letter, and neither a reserved name nor a reserved prefix; parameter values at most 100
characters; `timestamp_micros` no more than 72 hours back. A conversion with no client id
cannot be joined to a visitor and is skipped. The endpoint answers 2xx even to a malformed
payload, so these limits are checked here, before sending.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from loopline.attribution.exporters.base import Exporter, Outgoing, Skip, batch_size, secret
from loopline.config.attribution import Ga4Destination
from loopline.domain.outcomes import Conversion

MP_URL = "https://www.google-analytics.com"
EVENTS_PER_REQUEST = 25
NAME_MAX = 40
VALUE_MAX = 100
MAX_AGE = timedelta(hours=72)
RESERVED_NAMES = {
    "ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
    "adunit_exposure", "app_background", "app_clear_data", "app_exception", "app_install",
    "app_remove", "app_store_refund", "app_store_subscription_cancel",
    "app_store_subscription_convert", "app_store_subscription_renew", "app_update",
    "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update",
    "dynamic_link_first_open", "error", "first_open", "first_visit", "in_app_purchase",
    "notification_dismiss", "notification_foreground", "notification_open",
    "notification_receive", "os_update", "session_start", "session_start_with_rollout",
    "user_engagement",
}  # fmt: skip
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


def event_name(raw: str) -> str:
    """A valid GA4 event name for `raw`: lowercased, other characters to `_`, a letter
    first, no reserved name or prefix, 40 characters at most."""
    name = _NOT_NAME.sub("_", raw.strip().lower()).strip("_")
    if not name:
        return "call_conversion"
    if not name[0].isalpha() or name.startswith(RESERVED_PREFIXES) or name in RESERVED_NAMES:
        name = f"call_{name}".rstrip("_")
    return name[:NAME_MAX].rstrip("_") or "call_conversion"


def _param(value: str | None) -> str | None:
    return value[:VALUE_MAX] if value else None


def event_of(conversion: Conversion, name: str) -> dict[str, object]:
    params: dict[str, object] = {
        "value": round(conversion.value, 2),
        "currency": conversion.currency,
        "transaction_id": conversion.id,
        "outcome": _param(conversion.outcome),
    }
    campaign = _param(conversion.campaign)
    if campaign:
        params["campaign"] = campaign
    source = _param(conversion.source)
    if source:
        params["source"] = source
    return {"name": event_name(name), "params": {k: v for k, v in params.items() if v is not None}}


class Ga4Exporter(Exporter):
    kind = "ga4"

    def __init__(self, destination: Ga4Destination, env: Mapping[str, str]) -> None:
        self.name = destination.name
        self.destination = destination
        self._env = env
        # A batch is split by visitor; each request holds at most 25 events of one visitor.
        self.batch_limit = batch_size(destination.batch_size, 500)

    def render(
        self, conversions: Sequence[Conversion], now: datetime
    ) -> tuple[list[Outgoing], list[Skip]]:
        skips: list[Skip] = []
        by_client: dict[str, list[Conversion]] = defaultdict(list)
        for c in conversions:
            if not c.client_id:
                skips.append(Skip(c.id, "no GA4 client id in the journey"))
            elif now - c.occurred_at > MAX_AGE:
                skips.append(Skip(c.id, "older than GA4's 72 hours"))
            else:
                by_client[c.client_id].append(c)
        if not by_client:
            return [], skips
        api_secret = secret(self._env, self.destination.api_secret_env)
        base = (self.destination.url or MP_URL).rstrip("/")
        params = {"measurement_id": self.destination.measurement_id, "api_secret": api_secret}
        out: list[Outgoing] = []
        for client_id, group in by_client.items():
            for start in range(0, len(group), EVENTS_PER_REQUEST):
                chunk = group[start : start + EVENTS_PER_REQUEST]
                body = {
                    "client_id": client_id,
                    "timestamp_micros": int(
                        min(c.occurred_at for c in chunk).timestamp() * 1_000_000
                    ),
                    "events": [
                        event_of(c, self.destination.event_names.get(c.name, c.name)) for c in chunk
                    ],
                }
                out.append(
                    Outgoing(
                        tuple(c.id for c in chunk),
                        "POST",
                        f"{base}/mp/collect",
                        {"Content-Type": "application/json"},
                        json.dumps(body, separators=(",", ":")).encode(),
                        params=params,
                    )
                )
        return out, skips
