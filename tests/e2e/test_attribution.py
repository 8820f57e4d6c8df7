"""Closing the loop on a real server: a visitor from a Google ad calls, the agent dispositions
a sale of 450 USD, and the Google upload file, the Data Manager request, the Meta event and
the CRM webhook arrive at (local stand-ins for) each platform with the click id, the value and
the hashed phone."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from typing import Any

import pytest

from tests.attribution.sink import WEBHOOK_SECRET, Sink
from tests.e2e.conftest import Running, next_of, token_for
from tests.support import free_port, serve

pytestmark = pytest.mark.e2e

LANDING = (
    "http://127.0.0.1/demo/site/landing?utm_source=google&utm_medium=cpc"
    "&utm_campaign=spring-sale&utm_term=home+insurance&gclid=TeSt-gclid-450"
)
CALLER = "+14085550177"
SID = "CA" + "4" * 32
ENV = {
    "GOOGLE_ADS_ACCESS_TOKEN": "ya29.e2e",
    "META_CAPI_ACCESS_TOKEN": "EAAe2e",
    "LOOPLINE_WEBHOOK_SECRET": WEBHOOK_SECRET,
}


def closing_the_loop(sink_url: str):  # type: ignore[no-untyped-def]
    def mutate(data: dict[str, Any]) -> None:
        agent = next(a for a in data["agents"] if a["id"] == "ana")
        agent["skills"] = {"sales": 5, "support": 5, "billing": 5, "retention": 5, "spanish": 5}
        data["agents"] = [agent]
        fast = {"timeout_s": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2}
        data["attribution"] = {
            "settle_s": 0.1,
            "disposition_grace_s": 0,
            "timezone": "America/New_York",
            "conversions": [{"outcome": "sale", "name": "Phone sale", "value": 300}],
            "destinations": [
                {
                    "kind": "google_ads",
                    "name": "google-file",
                    "mode": "csv",
                    "url": f"{sink_url}/upload/google-ads",
                    "timezone": "America/New_York",
                    **fast,
                },
                {
                    "kind": "google_ads",
                    "name": "google-api",
                    "customer_id": "123-456-7890",
                    "conversion_actions": {"Phone sale": "555"},
                    "url": sink_url,
                    **fast,
                },
                {"kind": "meta", "name": "meta", "pixel_id": "4242", "url": sink_url, **fast},
                {"kind": "webhook", "name": "crm", "url": f"{sink_url}/hooks/crm", **fast},
            ],
        }

    return mutate


async def visit_and_call(node: Running, ws: Any) -> str:
    touch = {
        "visitor_id": "visitor-450",
        "session_id": "session-450",
        "landing": LANDING,
        "referrer": "https://www.google.com/",
        "touches": [{"kind": "pageview", "url": LANDING, "title": "Harbor"}],
    }
    leased = await node.http.post(
        node.base + "/v1/touches",
        content=json.dumps(touch).encode(),
        headers={"content-type": "text/plain"},
    )
    assert leased.status_code == 200, leased.text
    await node.voice(SID, CALLER, dialed=leased.json()["number"])
    pop = await next_of(ws, "call.offered")
    assert pop["journey"]["click_ids"] == {"gclid": "TeSt-gclid-450"}
    call_id: str = pop["call_id"]
    await ws.send(json.dumps({"type": "accept", "call_id": call_id}))
    assert (await next_of(ws, "ack"))["ok"]
    await node.signer.post(
        node.http,
        f"/twilio/dial-status?call_id={call_id}",
        {"CallSid": SID, "DialCallStatus": "completed", "DialCallDuration": "240"},
    )
    await node.signer.post(node.http, "/twilio/status", {"CallSid": SID, "CallStatus": "completed"})
    return call_id


async def test_a_sale_on_the_phone_reaches_every_platform(start_node, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name, value in ENV.items():  # credentials come from the process environment
        monkeypatch.setenv(name, value)
    sink = Sink()
    port = free_port()
    sink_url = f"http://127.0.0.1:{port}"
    agent = {"Authorization": f"Bearer {token_for('agent', 'ana')}"}
    boss = {"Authorization": f"Bearer {token_for('supervisor', 'sam')}"}
    async with serve(sink.app(), port), start_node(closing_the_loop(sink_url)) as node:
        async with node.agent("ana") as ws:
            call_id = await visit_and_call(node, ws)

        wrong = await node.http.post(
            f"{node.base}/v1/calls/{call_id}/disposition",
            json={"outcome": "bought-a-boat"},
            headers=agent,
        )
        assert wrong.status_code == 422
        someone_else = await node.http.post(
            f"{node.base}/v1/calls/{call_id}/disposition",
            json={"outcome": "sale"},
            headers={"Authorization": f"Bearer {token_for('agent', 'ben')}"},
        )
        assert someone_else.status_code == 403
        done = await node.http.post(
            f"{node.base}/v1/calls/{call_id}/disposition",
            json={"outcome": "sale", "value": 450, "currency": "usd", "notes": "home policy"},
            headers=agent,
        )
        assert done.status_code == 200, done.text
        [conv] = done.json()["conversions"]
        assert (conv["name"], conv["value"], conv["currency"]) == ("Phone sale", 450.0, "USD")

        everyone = {"csv", "datamanager", "meta", "webhook"}
        for _ in range(300):
            if {r["kind"] for r in sink.requests} >= everyone:
                break
            await asyncio.sleep(0.05)
        assert not sink.problems
        by_kind = {r["kind"]: r for r in sink.requests}

        lines = by_kind["csv"]["text"].splitlines()
        assert lines[0] == "Parameters:TimeZone=America/New_York"
        [row] = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
        assert (row["Google Click ID"], row["Conversion Name"]) == ("TeSt-gclid-450", "Phone sale")
        assert (row["Conversion Value"], row["Conversion Currency"], row["Order ID"]) == (
            "450.00",
            "USD",
            conv["id"],
        )

        [event] = by_kind["datamanager"]["body"]["events"]
        assert event["adIdentifiers"] == {"gclid": "TeSt-gclid-450"}
        assert event["conversionValue"] == 450.0 and event["transactionId"] == conv["id"]
        phone_google = hashlib.sha256(CALLER.encode()).hexdigest()
        assert event["userData"]["userIdentifiers"] == [{"phoneNumber": phone_google}]
        assert by_kind["datamanager"]["auth"] == "Bearer ya29.e2e"

        [meta] = by_kind["meta"]["body"]["data"]
        assert by_kind["meta"]["path"] == ("v21.0", "4242")
        assert meta["event_id"] == conv["id"] and meta["action_source"] == "phone_call"
        assert meta["user_data"]["ph"] == [hashlib.sha256(CALLER[1:].encode()).hexdigest()]
        assert meta["custom_data"] == {"value": 450.0, "currency": "usd"}

        [hook] = by_kind["webhook"]["body"]["conversions"]
        assert hook["click_ids"] == {"gclid": "TeSt-gclid-450"}
        assert (hook["value"], hook["caller_number"], hook["campaign"]) == (
            450.0,
            CALLER,
            "spring-sale",
        )

        # Each platform got it once; the outbox says so too.
        assert sink.accepted == {conv["id"]: 4} and not sink.duplicates
        async with asyncio.timeout(10):
            while True:
                box = (await node.http.get(f"{node.base}/v1/outbox", headers=boss)).json()
                if (
                    all(c == {"delivered": 1} for c in box["counts"].values())
                    and len(box["counts"]) == 4
                ):
                    break
                await asyncio.sleep(0.05)

        # The outcome is the agent's; the automatic pass scored QA and wrote the KPI row.
        async with asyncio.timeout(10):
            while True:
                got = await node.http.get(f"{node.base}/v1/calls/{call_id}/outcome", headers=agent)
                if got.status_code == 200 and got.json()["qa"] is not None:
                    break
                await asyncio.sleep(0.05)
        outcome = got.json()
        assert (outcome["label"], outcome["source"], outcome["decided_by"]) == (
            "sale",
            "disposition",
            "agent:ana",
        )
        kpis = await node.http.get(
            f"{node.base}/v1/kpis", params={"group_by": "campaign"}, headers=boss
        )
        assert kpis.status_code == 200
        [group] = kpis.json()["groups"]
        assert (group["key"], group["calls"], group["phone_revenue"], group["close_rate"]) == (
            "spring-sale",
            1,
            450.0,
            1.0,
        )
        assert (await node.http.get(f"{node.base}/v1/kpis", headers=agent)).status_code == 403
