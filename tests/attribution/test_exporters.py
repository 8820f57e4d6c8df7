"""Exporter payloads, as each destination documents them: tables of cases, no server."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import google.ads.datamanager_v1 as dm
import pytest
from google.ads.datamanager_util.format import Encoding, Formatter

from loopline.attribution.exporters import build_exporter
from loopline.attribution.exporters.base import CredentialMissing
from loopline.attribution.exporters.ga4 import Ga4Exporter, event_name
from loopline.attribution.exporters.google_ads import (
    GoogleAdsExporter,
    call_csv,
    click_csv,
    click_id_of,
)
from loopline.attribution.exporters.meta import MetaExporter
from loopline.attribution.exporters.webhook import WebhookExporter, verify
from loopline.config.attribution import (
    Ga4Destination,
    GoogleAdsDestination,
    MetaDestination,
    WebhookDestination,
)
from loopline.domain.outcomes import Conversion

NOW = datetime(2026, 1, 5, 16, 0, tzinfo=UTC)
ENV = {
    "GOOGLE_ADS_ACCESS_TOKEN": "ya29.token",
    "META_CAPI_ACCESS_TOKEN": "EAAtoken",
    "GA4_API_SECRET": "mp-secret",
    "LOOPLINE_WEBHOOK_SECRET": "whsec",
}


def conv(**kw: object) -> Conversion:
    data: dict[str, object] = {
        "id": "cv_0123",
        "call_id": "call-1",
        "name": "Phone sale",
        "value": 450.0,
        "currency": "USD",
        "occurred_at": datetime(2026, 1, 5, 15, 4, 5, tzinfo=UTC),
        "call_started_at": datetime(2026, 1, 5, 15, 0, 0, tzinfo=UTC),
        "caller_number": "+14155550100",
        "click_ids": {"gclid": "EAIaIQobChMI-test"},
        "outcome": "sale",
    }
    data.update(kw)
    return Conversion.model_validate(data)


# -- Google Ads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("click_ids", "expected"),
    [
        ({"gclid": "G", "gbraid": "B", "wbraid": "W"}, ("gclid", "G")),
        ({"gbraid": "B", "wbraid": "W"}, ("gbraid", "B")),
        ({"wbraid": "W", "fbclid": "F"}, ("wbraid", "W")),
        ({"fbclid": "F"}, None),
        ({"gclid": ""}, None),
    ],
)
def test_one_google_click_id_per_conversion(click_ids: dict[str, str], expected: object) -> None:
    assert click_id_of(conv(click_ids=click_ids)) == expected


@pytest.mark.parametrize(
    ("zone", "at", "written"),
    [
        ("America/New_York", datetime(2026, 1, 5, 15, 4, 5, tzinfo=UTC), "2026-01-05 10:04:05"),
        ("America/New_York", datetime(2026, 7, 5, 15, 4, 5, tzinfo=UTC), "2026-07-05 11:04:05"),
        ("Europe/Berlin", datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "2027-01-01 00:30:00"),
        ("UTC", datetime(2026, 3, 1, 0, 0, tzinfo=UTC), "2026-03-01 00:00:00"),
    ],
)
def test_click_csv_has_the_timezone_line_and_times_in_that_zone(
    zone: str, at: datetime, written: str
) -> None:
    text = click_csv(
        [conv(occurred_at=at), conv(id="cv_2", click_ids={"wbraid": "W1"}, value=19.5)], zone
    )
    lines = text.splitlines()
    assert lines[0] == f"Parameters:TimeZone={zone}"
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    assert rows[0] == {
        "Google Click ID": "EAIaIQobChMI-test",
        "GBRAID": "",
        "WBRAID": "",
        "Conversion Name": "Phone sale",
        "Conversion Time": written,
        "Conversion Value": "450.00",
        "Conversion Currency": "USD",
        "Order ID": "cv_0123",
    }
    assert (rows[1]["Google Click ID"], rows[1]["WBRAID"], rows[1]["Conversion Value"]) == (
        "",
        "W1",
        "19.50",
    )


def test_call_csv_lists_the_caller_in_e164_and_skips_what_it_cannot_match() -> None:
    text = call_csv(
        [
            conv(click_ids={}, caller_number="(415) 555-0100"),
            conv(id="cv_x", click_ids={}, caller_number="anonymous"),
            conv(id="cv_name", name='Sale, "gold" plan', click_ids={}),
        ],
        "America/Los_Angeles",
    )
    lines = text.splitlines()
    assert lines[0] == "Parameters:TimeZone=America/Los_Angeles"
    assert lines[1] == (
        "Caller's Phone Number,Call Start Time,Conversion Name,Conversion Time,"
        "Conversion Value,Conversion Currency"
    )
    assert lines[2] == "+14155550100,2026-01-05 07:00:00,Phone sale,2026-01-05 07:04:05,450.00,USD"
    assert (
        lines[3]
        == '+14155550100,2026-01-05 07:00:00,"Sale, ""gold"" plan",2026-01-05 07:04:05,450.00,USD'
    )
    assert len(lines) == 4


def google(**kw: object) -> GoogleAdsExporter:
    settings: dict[str, object] = {
        "kind": "google_ads",
        "name": "google",
        "customer_id": "123-456-7890",
        "login_customer_id": "111-222-3333",
        "conversion_actions": {"Phone sale": "987654"},
    }
    settings.update(kw)
    exporter = build_exporter(GoogleAdsDestination.model_validate(settings), ENV)
    assert isinstance(exporter, GoogleAdsExporter)
    return exporter


def test_data_manager_request_is_the_client_librarys_own_format() -> None:
    [request], skips = google().render(
        [conv(), conv(id="cv_call", click_ids={}, email="Jane.Doe@gmail.com")], NOW
    )
    assert not skips
    assert request.url == "https://datamanager.googleapis.com/v1/events:ingest"
    assert request.headers["Authorization"] == "Bearer ya29.token"
    assert request.headers["login-customer-id"] == "1112223333"
    body = request.json()
    assert isinstance(body, dict)
    assert body["encoding"] == "HEX"
    assert body["destinations"] == [
        {
            "reference": "Phone sale",
            "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "1112223333"},
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
            "productDestinationId": "987654",
        }
    ]
    click, call = body["events"]
    phone = Formatter().process_phone_number("+14155550100", Encoding.HEX)
    assert click == {
        "destinationReferences": ["Phone sale"],
        "transactionId": "cv_0123",
        "eventTimestamp": "2026-01-05T15:04:05Z",
        "adIdentifiers": {"gclid": "EAIaIQobChMI-test"},
        "userData": {"userIdentifiers": [{"phoneNumber": phone}]},
        "conversionValue": 450.0,
        "currency": "USD",
        "eventSource": "PHONE",
    }
    assert "adIdentifiers" not in call
    assert call["userData"]["userIdentifiers"][1] == {
        "emailAddress": Formatter().process_email_address("Jane.Doe@gmail.com", Encoding.HEX)
    }
    # The library reads back what it wrote, so the field names are the API's.
    parsed = dm.IngestEventsRequest.from_json(request.content.decode())
    assert parsed.events[0].ad_identifiers.gclid == "EAIaIQobChMI-test"


@pytest.mark.parametrize(
    ("conversion", "settings", "reason"),
    [
        (conv(name="Quote"), {}, "no conversion action configured for 'Quote'"),
        (conv(click_ids={}, caller_number=None), {}, "no click id and no caller number"),
        (conv(click_ids={}), {"call_conversions": False}, "no click id and no caller number"),
    ],
)
def test_google_skips_what_it_cannot_match(
    conversion: Conversion, settings: dict[str, object], reason: str
) -> None:
    requests, skips = google(**settings).render([conversion], NOW)
    assert requests == [] and [s.reason for s in skips] == [reason]


def test_google_csv_mode_posts_one_file_for_clicks_and_one_for_calls() -> None:
    exporter = google(mode="csv", url="http://127.0.0.1:9/upload", timezone="America/New_York")
    requests, _ = exporter.render([conv(), conv(id="cv_call", click_ids={})], NOW)
    assert [r.ids for r in requests] == [("cv_0123",), ("cv_call",)]
    assert (
        requests[0]
        .content.decode()
        .startswith("Parameters:TimeZone=America/New_York\nGoogle Click ID,")
    )
    assert requests[1].content.decode().splitlines()[1].startswith("Caller's Phone Number,")


def test_a_missing_credential_is_reported_not_sent() -> None:
    exporter = build_exporter(
        GoogleAdsDestination(kind="google_ads", name="g", conversion_actions={"Phone sale": "1"}),
        {},
    )
    with pytest.raises(CredentialMissing, match="GOOGLE_ADS_ACCESS_TOKEN"):
        exporter.render([conv()], NOW)


# -- Meta -------------------------------------------------------------------------------------


def meta(**kw: object) -> MetaExporter:
    settings: dict[str, object] = {"kind": "meta", "name": "meta", "pixel_id": "1234567890"}
    settings.update(kw)
    exporter = build_exporter(MetaDestination.model_validate(settings), ENV)
    assert isinstance(exporter, MetaExporter)
    return exporter


def test_meta_event_is_a_phone_call_with_hashed_contact_and_raw_fbc() -> None:
    c = conv(
        caller_number="(415) 555-0100",
        email=" Jane.Doe@Example.com",
        fbc="fb.1.1767620000000.IwAR-click",
        fbp="fb.1.1767620000000.123456789",
    )
    [request], skips = meta(
        event_names={"Phone sale": "Purchase"}, test_event_code="TEST123"
    ).render([c], NOW)
    assert not skips
    assert request.url == "https://graph.facebook.com/v21.0/1234567890/events"
    body = request.json()
    assert isinstance(body, dict)
    assert body["access_token"] == "EAAtoken" and body["test_event_code"] == "TEST123"
    [event] = body["data"]
    assert event == {
        "event_name": "Purchase",
        "event_time": int(c.occurred_at.timestamp()),
        "event_id": "cv_0123",
        "action_source": "phone_call",
        "user_data": {
            "ph": [hashlib.sha256(b"14155550100").hexdigest()],
            "em": [hashlib.sha256(b"jane.doe@example.com").hexdigest()],
            "fbc": "fb.1.1767620000000.IwAR-click",
            "fbp": "fb.1.1767620000000.123456789",
        },
        "custom_data": {"value": 450.0, "currency": "usd"},
    }


@pytest.mark.parametrize(
    ("conversion", "reason"),
    [
        (conv(occurred_at=NOW - timedelta(days=8)), "older than Meta's 7 days"),
        (conv(caller_number=None), "no phone, email, fbc or fbp to match on"),
    ],
)
def test_meta_skips_what_it_would_refuse(conversion: Conversion, reason: str) -> None:
    requests, skips = meta().render([conversion], NOW)
    assert requests == [] and [s.reason for s in skips] == [reason]


@pytest.mark.parametrize(
    ("status", "body", "accepted", "retryable"),
    [
        (200, b'{"events_received": 1}', True, False),
        (400, b'{"error": {"code": 100, "message": "Invalid parameter"}}', False, False),
        (400, b'{"error": {"code": 2, "is_transient": true}}', False, True),
        (400, b'{"error": {"code": 613}}', False, True),
        (503, b"unavailable", False, True),
        (400, b"not json", False, False),
    ],
)
def test_meta_tells_transient_errors_from_refusals(
    status: int, body: bytes, accepted: bool, retryable: bool
) -> None:
    judgement = meta().judge(status, body)
    assert (judgement.accepted, judgement.retryable) == (accepted, retryable)


# -- GA4 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Phone sale", "phone_sale"),
        ("purchase", "purchase"),
        ("session_start", "call_session_start"),
        ("google_thing", "call_google_thing"),
        ("_private", "private"),
        ("9 lives", "call_9_lives"),
        ("Ünïcode — call", "n_code_call"),
        ("x" * 60, "x" * 40),
        ("!!!", "call_conversion"),
    ],
)
def test_ga4_event_names_follow_its_rules(raw: str, name: str) -> None:
    assert event_name(raw) == name
    assert len(name) <= 40 and name[0].isalpha()


def ga4() -> Ga4Exporter:
    exporter = build_exporter(
        Ga4Destination(kind="ga4", name="ga4", measurement_id="G-ABC123", url="http://127.0.0.1:9"),
        ENV,
    )
    assert isinstance(exporter, Ga4Exporter)
    return exporter


def test_ga4_sends_at_most_25_events_per_visitor_per_request() -> None:
    many = [conv(id=f"cv_{i}", client_id="111.222") for i in range(30)]
    other = conv(id="cv_other", client_id="333.444", campaign="c" * 150)
    stale = conv(id="cv_old", client_id="111.222", occurred_at=NOW - timedelta(hours=73))
    requests, skips = ga4().render([*many, other, stale], NOW)
    assert [len(r.ids) for r in requests] == [25, 5, 1]
    assert [s.id for s in skips] == ["cv_old"]
    first = requests[0].json()
    assert isinstance(first, dict)
    assert requests[0].params == {"measurement_id": "G-ABC123", "api_secret": "mp-secret"}
    assert first["client_id"] == "111.222"
    assert first["timestamp_micros"] == int(many[0].occurred_at.timestamp() * 1_000_000)
    assert first["events"][0] == {
        "name": "phone_sale",
        "params": {"value": 450.0, "currency": "USD", "transaction_id": "cv_0", "outcome": "sale"},
    }
    last = requests[2].json()
    assert isinstance(last, dict)
    assert len(last["events"][0]["params"]["campaign"]) == 100


# -- webhook ----------------------------------------------------------------------------------


def test_webhook_is_signed_over_timestamp_and_body() -> None:
    exporter = build_exporter(
        WebhookDestination(kind="webhook", name="crm", url="http://127.0.0.1:9/hook"), ENV
    )
    assert isinstance(exporter, WebhookExporter)
    [request], _ = exporter.render([conv(), conv(id="cv_2")], NOW)
    ts = request.headers["X-Loopline-Timestamp"]
    sig = request.headers["X-Loopline-Signature"]
    assert ts == str(int(NOW.timestamp())) and sig.startswith("v1=")
    assert verify("whsec", request.content, ts, sig, NOW)
    assert not verify("other", request.content, ts, sig, NOW)
    assert not verify("whsec", request.content + b" ", ts, sig, NOW)
    assert not verify("whsec", request.content, ts, sig, NOW + timedelta(minutes=6))
    assert not verify("whsec", request.content, None, sig, NOW)
    body = json.loads(request.content)
    assert [c["id"] for c in body["conversions"]] == ["cv_0123", "cv_2"]
    again, _ = exporter.render([conv(id="cv_2"), conv()], NOW + timedelta(seconds=30))
    assert again[0].headers["Idempotency-Key"] == request.headers["Idempotency-Key"]
    assert exporter.judge(409, b"").accepted and not exporter.judge(422, b"").retryable
