"""Governance on live calls: the ADMT opt-out greeting (a key pressed during it sends the call
down the plain default route with no intent on the record), the consent disclosure spoken
before the media stream where the caller's state needs it, and no personal data in any log
line's text while it all happens."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx
import pytest

from loopline.cli import quiet_noisy_loggers
from loopline.records.models import CallRecord
from tests.e2e.conftest import Running, next_of
from tests.support import ACCOUNT_SID

pytestmark = pytest.mark.e2e

LA_CALLER = "+13105550123"  # California (all-party), CRM: balance due -> billing intent
NY_CALLER = "+12125550199"  # New York (one-party), CRM: churn risk -> retention policy
CALL_ID = re.compile(r"call_id=(CL[0-9a-f]+)")


def governed(data: dict[str, Any]) -> None:
    agent = next(a for a in data["agents"] if a["id"] == "ana")
    agent["skills"] = {"sales": 5, "support": 5, "billing": 5, "retention": 5}
    data["agents"] = [agent]  # one agent: the second call waits in its queue, as routed
    data["users"] = []
    data["compliance"] = {
        "consent": {"mode": "all-party", "disclosure": "This call is recorded."},
        "admt": {"dtmf_key": "9", "gather_timeout_s": 4},
    }


async def _voice(node: Running, sid: str, caller: str, query: str = "", **extra: str) -> str:
    form = {
        "CallSid": sid,
        "From": caller,
        "To": "+15005550100",
        "CallStatus": "ringing",
        "AccountSid": ACCOUNT_SID,
        **extra,
    }
    resp: httpx.Response = await node.signer.post(node.http, "/twilio/voice" + query, form)
    assert resp.status_code == 200, resp.text
    return resp.text


async def _record(node: Running, call_id: str) -> CallRecord:
    async with asyncio.timeout(5):
        while True:
            record = await node.node.records.get_call(call_id)
            if record is not None and record.decisions and "caller" in record.context:
                return record
            await asyncio.sleep(0.05)


async def test_a_key_pressed_in_the_greeting_routes_without_automation(start_node, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    quiet_noisy_loggers()  # as `loopline serve` does: libraries that echo SQL or URLs
    async with start_node(governed) as node:
        base = node.base
        greeting = await _voice(node, "CA" + "1" * 32, LA_CALLER)
        assert greeting == (
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            f'<Gather action="{base}/twilio/voice?admt=1" method="POST" numDigits="1" timeout="4">'
            "<Say>To have your call routed without automated decision-making, press 9 now.</Say>"
            f'</Gather><Redirect method="POST">{base}/twilio/voice?admt=1</Redirect></Response>'
        )
        assert await node.node.state.call_id_for("CA" + "1" * 32) is None

        # The caller presses 9: the default route (support), not billing, and a disclosure
        # (California) before the stream starts.
        async with node.agent("ana") as ws:
            opted = await _voice(node, "CA" + "1" * 32, LA_CALLER, "?admt=1", Digits="9")
            pop = await next_of(ws, "call.offered")
        say, start, dial = opted.index("<Say>"), opted.index("<Start>"), opted.index("<Dial")
        assert say < start < dial
        assert "<Say>This call is recorded.</Say>" in opted
        assert pop["decision"]["queue"] == "support"
        assert pop["intent"]["name"] == "unknown"
        record = await _record(node, pop["call_id"])
        async with asyncio.timeout(5):
            while "intent" not in record.context:
                await asyncio.sleep(0.05)
                record = await _record(node, pop["call_id"])
        assert record.context["admt_opt_out"] == "dtmf"
        assert record.decisions[0].policy == "default"
        assert record.decisions[0].reason.startswith("ADMT opt-out (dtmf)")
        assert record.context["intent"]["name"] == "unknown"
        assert record.context["intent"]["signals"] == []
        assert record.context["consent"]["jurisdiction"] == "CA"
        assert record.context["consent"]["disclose"] is True

        # Silence in the greeting: the policies route as usual; New York needs no disclosure.
        routed = await _voice(node, "CA" + "2" * 32, NY_CALLER, "?admt=1")
        assert "<Say>" not in routed and "<Start>" in routed
        assert ">retention</Enqueue>" in routed
        match = CALL_ID.search(routed)
        assert match is not None
        record = await _record(node, match.group(1))
        assert "admt_opt_out" not in record.context
        assert record.decisions[0].policy == "churn-risk"
        assert record.context["consent"]["disclose"] is False

        # The assessment counts the opt-out.
        admin = {"Authorization": "Bearer " + _admin_token()}
        report = await node.http.get(f"{base}/v1/admt/assessment?days=7", headers=admin)
        assert report.status_code == 200, report.text
        body = report.json()
        assert body["calls"] == 2 and body["opted_out_by"] == {"dtmf": 1}
        assert "crm" in body["data_read"] and "intent" in body["data_read"]
        assert any(d["name"] == "churn-risk" for d in body["decisions"])

    texts = [r.getMessage() for r in caplog.records]
    for secret in (LA_CALLER, NY_CALLER, "3105550123", "Ada Lovelace", "Alan Turing"):
        assert not [t for t in texts if secret in t], secret


async def test_no_stream_where_the_policy_forbids_one(start_node) -> None:  # type: ignore[no-untyped-def]
    def no_stream(data: dict[str, Any]) -> None:
        governed(data)
        data["compliance"] = {"consent": {"mode": "no-stream-all-party"}}

    async with start_node(no_stream) as node:
        la = await _voice(node, "CA" + "3" * 32, LA_CALLER)
        assert "<Stream" not in la and "<Enqueue" in la
        ny = await _voice(node, "CA" + "4" * 32, NY_CALLER)
        assert "<Stream" in ny and "<Say>" not in ny
        # A retried webhook gets the same plan: still no stream for California.
        again = await _voice(node, "CA" + "3" * 32, LA_CALLER)
        assert "<Stream" not in again


def _admin_token() -> str:
    from tests.e2e.conftest import token_for

    return token_for("admin", "root")
