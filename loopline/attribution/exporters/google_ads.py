"""Google Ads: offline click conversions (gclid, gbraid or wbraid) and call conversions (the
caller's number), as the upload CSV and as Data Manager API requests.

The CSV follows Google's offline-conversion import templates: a `Parameters:TimeZone=` line,
then a header row, then one conversion per row with times written in that zone
(`yyyy-MM-dd HH:mm:ss`). Clicks and calls are two templates, so two files.

Data Manager API requests are built with Google's own `google-ads-datamanager` client types
(`IngestEventsRequest`, `Event`, `Destination`...) and serialised by the client's own JSON
mapping; the deliverer sends them to `POST /v1/events:ingest` with an OAuth access token from
the environment. Contact details go hashed as Google specifies (see `identity`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from loopline.attribution.exporters.base import (
    Exporter,
    Judgement,
    Outgoing,
    Skip,
    batch_size,
    secret,
)
from loopline.attribution.identity import google_email, google_phone, hashed
from loopline.config.attribution import GoogleAdsDestination
from loopline.domain.outcomes import Conversion

DATA_MANAGER_URL = "https://datamanager.googleapis.com"
# Data Manager: at most 2,000 events per IngestEventsRequest.
DATA_MANAGER_LIMIT = 2000
CSV_LIMIT = 10_000

CLICK_HEADER = (
    "Google Click ID",
    "GBRAID",
    "WBRAID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
    "Order ID",
)
CALL_HEADER = (
    "Caller's Phone Number",
    "Call Start Time",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
CSV_TIME = "%Y-%m-%d %H:%M:%S"


def click_id_of(conversion: Conversion) -> tuple[str, str] | None:
    """The one click id Google accepts per conversion: gclid, else gbraid, else wbraid
    (Google refuses gbraid with wbraid, and either of them with a gclid)."""
    for key in ("gclid", "gbraid", "wbraid"):
        value = conversion.click_ids.get(key)
        if value:
            return key, value
    return None


def csv_time(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime(CSV_TIME)


def _value(value: float) -> str:
    return f"{value:.2f}"


def click_csv(conversions: Iterable[Conversion], zone: str) -> str:
    out = io.StringIO()
    out.write(f"Parameters:TimeZone={zone}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CLICK_HEADER)
    for c in conversions:
        found = click_id_of(c)
        if found is None:
            continue
        key, value = found
        writer.writerow(
            [
                value if key == "gclid" else "",
                value if key == "gbraid" else "",
                value if key == "wbraid" else "",
                c.name,
                csv_time(c.occurred_at, zone),
                _value(c.value),
                c.currency,
                c.id,
            ]
        )
    return out.getvalue()


def call_csv(conversions: Iterable[Conversion], zone: str, default_region: str = "US") -> str:
    out = io.StringIO()
    out.write(f"Parameters:TimeZone={zone}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CALL_HEADER)
    for c in conversions:
        number = google_phone(c.caller_number, default_region)
        if number is None or c.call_started_at is None:
            continue
        writer.writerow(
            [
                number,
                csv_time(c.call_started_at, zone),
                c.name,
                csv_time(c.occurred_at, zone),
                _value(c.value),
                c.currency,
            ]
        )
    return out.getvalue()


def _digits(account: str) -> str:
    return account.replace("-", "")


def ingest_request_json(
    conversions: Sequence[Conversion], destination: GoogleAdsDestination, default_region: str = "US"
) -> str:
    """The `IngestEventsRequest` for these conversions, as the client library writes it."""
    import google.ads.datamanager_v1 as dm
    from google.protobuf.timestamp_pb2 import Timestamp  # type: ignore[import-untyped]

    account = dm.ProductAccount(
        account_type=dm.ProductAccount.AccountType.GOOGLE_ADS,
        account_id=_digits(destination.customer_id),
    )
    login = (
        dm.ProductAccount(
            account_type=dm.ProductAccount.AccountType.GOOGLE_ADS,
            account_id=_digits(destination.login_customer_id),
        )
        if destination.login_customer_id
        else None
    )
    destinations = []
    for name in sorted({c.name for c in conversions}):
        kwargs: dict[str, object] = {
            "reference": name,
            "operating_account": account,
            "product_destination_id": destination.conversion_actions[name],
        }
        if login is not None:
            kwargs["login_account"] = login
        destinations.append(dm.Destination(**kwargs))
    events = []
    for c in conversions:
        stamp = Timestamp()
        stamp.FromDatetime(c.occurred_at)
        event: dict[str, object] = {
            "destination_references": [c.name],
            "transaction_id": c.id,
            "event_timestamp": stamp,
            "conversion_value": c.value,
            "currency": c.currency,
            "event_source": dm.EventSource.PHONE,
        }
        found = click_id_of(c)
        if found is not None:
            event["ad_identifiers"] = dm.AdIdentifiers(**{found[0]: found[1]})
        identifiers = []
        phone = hashed(google_phone(c.caller_number, default_region))
        if phone:
            identifiers.append(dm.UserIdentifier(phone_number=phone))
        email = hashed(google_email(c.email))
        if email:
            identifiers.append(dm.UserIdentifier(email_address=email))
        if identifiers:
            event["user_data"] = dm.UserData(user_identifiers=identifiers)
        events.append(dm.Event(**event))
    request = dm.IngestEventsRequest(
        destinations=destinations, events=events, encoding=dm.Encoding.HEX
    )
    text: str = dm.IngestEventsRequest.to_json(
        request,
        use_integers_for_enums=False,
        indent=None,
        always_print_fields_with_no_presence=False,
    )
    return text


class GoogleAdsExporter(Exporter):
    kind = "google_ads"

    def __init__(
        self, destination: GoogleAdsDestination, env: Mapping[str, str], default_region: str = "US"
    ) -> None:
        self.name = destination.name
        self.destination = destination
        self._env = env
        self._region = default_region
        limit = DATA_MANAGER_LIMIT if destination.mode == "datamanager" else CSV_LIMIT
        self.batch_limit = batch_size(destination.batch_size, limit)

    def _can_go(self, c: Conversion) -> str | None:
        if (
            self.destination.mode == "datamanager"
            and c.name not in self.destination.conversion_actions
        ):
            return f"no conversion action configured for {c.name!r}"
        if click_id_of(c) is not None:
            return None
        if self.destination.call_conversions and google_phone(c.caller_number, self._region):
            return None
        return "no click id and no caller number"

    def render(
        self, conversions: Sequence[Conversion], now: datetime
    ) -> tuple[list[Outgoing], list[Skip]]:
        skips: list[Skip] = []
        ready: list[Conversion] = []
        for c in conversions:
            reason = self._can_go(c)
            if reason is None:
                ready.append(c)
            else:
                skips.append(Skip(c.id, reason))
        if not ready:
            return [], skips
        if self.destination.mode == "csv":
            return self._csv(ready, now), skips
        token = secret(self._env, self.destination.access_token_env)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if self.destination.login_customer_id:
            headers["login-customer-id"] = _digits(self.destination.login_customer_id)
        base = (self.destination.url or DATA_MANAGER_URL).rstrip("/")
        body = ingest_request_json(ready, self.destination, self._region)
        return [
            Outgoing(
                tuple(c.id for c in ready),
                "POST",
                f"{base}/v1/events:ingest",
                headers,
                body.encode(),
            )
        ], skips

    def _csv(self, ready: list[Conversion], now: datetime) -> list[Outgoing]:
        if not self.destination.url:
            raise ValueError(f"destination {self.name}: csv mode needs a url to send the file to")
        zone = self.destination.timezone
        clicks = [c for c in ready if click_id_of(c) is not None]
        calls = [c for c in ready if click_id_of(c) is None]
        stamp = now.strftime("%Y%m%dT%H%M%S")
        out: list[Outgoing] = []
        for kind, group, text in (
            ("clicks", clicks, click_csv(clicks, zone)),
            ("calls", calls, call_csv(calls, zone, self._region)),
        ):
            if not group:
                continue
            headers = {
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{kind}-{stamp}.csv"',
            }
            out.append(
                Outgoing(
                    tuple(c.id for c in group), "POST", self.destination.url, headers, text.encode()
                )
            )
        return out

    def judge(self, status: int, body: bytes) -> Judgement:
        if status in (401, 403):
            # An expired token is refreshed outside; retrying later may well succeed.
            return Judgement(accepted=False, retryable=True, error=f"HTTP {status} (credentials)")
        return super().judge(status, body)
