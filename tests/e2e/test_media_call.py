"""Live media end to end: a real node, a call played exactly as Twilio would play it, real
Silero VAD and Whisper tiny.en, the events on the sockets and the stored transcript.

The recogniser loads once per node (a second or so); the audio is ten seconds played at 4×.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import websockets

from loopline.media.simulate import load_call_audio, simulate_call
from loopline.media.wer import wer
from loopline.providers.twilio_media import MediaStreamWriter
from tests.e2e.conftest import token_for
from tests.support import AUTH_TOKEN, TwilioSigner

pytestmark = pytest.mark.e2e

AUDIO = Path(__file__).parents[1] / "fixtures" / "audio"
MANIFEST = json.loads((AUDIO / "manifest.json").read_text())
GRACE = "+14155550142"
CARD = MANIFEST["caller_card_espeak.wav"]["card"]


def only_ana(data: dict[str, Any]) -> None:
    agent = next(a for a in data["agents"] if a["id"] == "ana")
    agent["skills"] = {"sales": 5, "support": 5, "billing": 5, "retention": 5, "spanish": 5}
    agent["languages"] = ["en", "es"]
    data["agents"] = [agent]


async def drain(ws: Any, quiet_s: float = 1.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        try:
            async with asyncio.timeout(quiet_s):
                out.append(json.loads(await ws.recv()))
        except TimeoutError:
            return out


def card_digits_in(text: str) -> bool:
    """Any group of the card's digits, as a number of its own or spoken, or the card whole."""
    joined = re.sub(r"(?<=\d)[\s\-.,]+(?=\d)", "", text)
    return (
        CARD in joined
        or re.search(r"(?<![\dA-Fa-fx])4242(?![\dA-Fa-f])", text) is not None
        or "four two four two" in text.lower()
    )


async def test_a_call_becomes_a_redacted_transcript_on_sockets_and_in_records(
    start_node, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    audio = load_call_audio(AUDIO / "caller_card_espeak.wav", agent_audio=AUDIO / "ldc93s1_8k.wav")
    supervisor = token_for("supervisor", "sue")
    async with start_node(only_ana) as node, node.agent("ana") as desk:
        ws_url = node.base.replace("http", "ws", 1) + "/ws/supervisor"
        headers = {"Authorization": f"Bearer {supervisor}"}
        async with websockets.connect(ws_url, additional_headers=headers) as sup:
            result = await simulate_call(
                node.base,
                audio,
                auth_token=AUTH_TOKEN,
                to="+15005550100",
                from_=GRACE,
                speed=4.0,
                wait=True,
                bearer=supervisor,
            )
            seen = await drain(sup)
        on_desk = await drain(desk, quiet_s=0.3)
        metrics = (await node.http.get(node.base + "/metrics")).text
        record = (
            await node.http.get(
                f"{node.base}/v1/calls/{result['call_id']}",
                headers={"Authorization": f"Bearer {supervisor}"},
            )
        ).json()

    finals = [m for m in seen if m["type"] == "utterance.final"]
    caller = " ".join(m["text"] for m in finals if m["speaker"] == "caller")
    agent = " ".join(m["text"] for m in finals if m["speaker"] == "agent")
    assert "[CARD]" in caller
    assert wer("I would like to pay my bill. My card number is card.", caller) <= 0.35
    assert wer(MANIFEST["ldc93s1_8k.wav"]["text"], agent) <= 0.4
    assert all(m["call_id"] == result["call_id"] for m in finals)
    card_spans = [r for m in finals for r in m["redactions"] if r["kind"] == "card"]
    assert card_spans and all(r["end_ms"] > r["start_ms"] for r in card_spans)
    assert any(m["type"] == "sentiment.updated" for m in seen)
    # The agent's desktop gets the call's utterances too.
    assert any(m["type"] == "utterance.final" and m["agent_id"] == "ana" for m in on_desk)

    # The transcript is stored and comes back with the call.
    stored = record["transcript"]
    assert [u["text"] for u in stored] == [u["text"] for u in result["transcript"]]
    assert sorted(u["text"] for u in stored) == sorted(m["text"] for m in finals)

    assert "asr_lag_seconds" in metrics
    assert 'redactions_total{kind="card"}' in metrics

    # The card number is in no event, no record, no log line.
    for message in [*seen, *on_desk, record, result]:
        assert not card_digits_in(json.dumps(message)), message.get("text")

    def stored_bytes() -> bytes:
        return b"".join(p.read_bytes() for p in tmp_path.glob("records.db*"))

    database = await asyncio.to_thread(stored_bytes)
    assert b"4242" not in database
    for entry in caplog.records:
        assert not card_digits_in(f"{entry.getMessage()} {entry.__dict__}")


async def test_the_media_socket_refuses_strangers_and_survives_garbage(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_ana) as node:
        url = node.base.replace("http", "ws", 1) + "/twilio/media"
        signer = TwilioSigner(node.base)
        good = {"X-Twilio-Signature": signer.validator.compute_signature(url, {})}

        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, additional_headers={"X-Twilio-Signature": "bad"}):
                pass
        assert refused.value.response.status_code == 403

        async with websockets.connect(url, additional_headers=good) as ws:
            for _ in range(20):
                await ws.send("this is not a media stream")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(5):
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

        # A stream for a call this node never routed: read, counted, discarded, never fatal.
        writer = MediaStreamWriter(stream_sid="MZ" + "a" * 32, call_sid="CA" + "b" * 32)
        async with websockets.connect(url, additional_headers=good) as ws:
            await ws.send(writer.connected())
            await ws.send(writer.start(("inbound",), {"call_id": "CLnosuchcall"}))
            await ws.send("{broken")
            for i in range(50):
                await ws.send(writer.media("inbound", b"\x00" * 160, timestamp_ms=i * 20))
            await ws.send(writer.stop())
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    await ws.recv()
        metrics = (await node.http.get(node.base + "/metrics")).text
        assert 'media_messages_rejected_total{kind="unknown_call"} 1' in metrics
        assert 'media_messages_rejected_total{kind="bad_json"} 21' in metrics
        assert "media_streams_total 0" in metrics
        assert (await node.http.get(node.base + "/healthz")).status_code == 200
