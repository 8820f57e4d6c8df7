"""`serve --demo`: a simulated call follows the node's TwiML into its media stream and plays the
committed demo conversation, so the supervisor sees live, redacted transcripts of both sides."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
import websockets

from loopline.web.demo import DemoTelephony
from tests.e2e.conftest import token_for
from tests.e2e.test_media_call import CARD, drain, only_ana

pytestmark = pytest.mark.e2e


async def test_a_demo_call_streams_the_committed_audio(start_node) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token_for('supervisor', 'sue')}"}
    async with start_node(only_ana) as node:
        # Four times real time: the 32 s conversation plays in 8 s.
        telephony = DemoTelephony(node.node.settings, speed=4.0)
        ws_url = node.base.replace("http", "ws", 1) + "/ws/supervisor"
        try:
            async with websockets.connect(ws_url, additional_headers=headers) as sup:
                await telephony.place_call("+14155550142", "+15005550100")
                (call,) = telephony._calls.values()
                assert call.stream_url is not None and call.call_id
                assert call.stream_params == {"call_id": call.call_id}
                telephony.answered(call.call_id)
                async with asyncio.timeout(60):
                    await call.done.wait()
                seen: list[dict[str, Any]] = await drain(sup)
        finally:
            await telephony.close()

    finals = [m for m in seen if m["type"] == "utterance.final"]
    assert {m["call_id"] for m in finals} == {call.call_id}
    caller = " ".join(m["text"] for m in finals if m["speaker"] == "caller")
    agent = " ".join(m["text"] for m in finals if m["speaker"] == "agent")
    assert "bill" in caller.lower() and "payment" in agent.lower()
    # Whisper tiny.en hears the synthesised digits differently from pass to pass ("4242 4242
    # ..." or "for 2 for 2 ..."); whatever it heard, the card number itself never goes out.
    assert CARD not in re.sub(r"\D", "", json.dumps(seen))
