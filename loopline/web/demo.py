"""`loopline serve --demo`: simulated Twilio and simulated agents driving a real node.

The simulator talks to the node only the way Twilio and agent desktops do: signed webhooks over
HTTP and agent websockets. It also stands in for Twilio's REST API (redirects), so a newcomer
sees calls flow, queue and get dequeued with no telephony account. When the node's answer starts
a media stream, the simulated call plays the committed demo conversation into it once an agent
answers (`loopline/media/demo_audio/`), so the desktops show live, redacted transcripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import websockets
from twilio.request_validator import RequestValidator

from loopline.config.settings import Settings
from loopline.domain.agents import Presence
from loopline.domain.clock import SystemClock
from loopline.media.simulate import CallAudio, demo_call_audio, play_stream
from loopline.providers.twilio_rest import CallControl
from loopline.web.auth import Principal, issue_token

log = logging.getLogger("loopline.demo")

CALLERS = ["+14155550142", "+12125550199", "+13105550123", "+15125550111", "+526641234567"]


@dataclass
class SimCall:
    sid: str
    caller: str
    dialed: str
    call_id: str | None = None
    stream_url: str | None = None
    stream_params: dict[str, str] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class DemoTelephony(CallControl):
    """Plays Twilio: places calls with signed webhooks and follows the TwiML answers."""

    def __init__(
        self,
        settings: Settings,
        *,
        talk_s: tuple[float, float] = (4.0, 12.0),
        audio: CallAudio | None = None,
        speed: float = 1.0,
    ) -> None:
        token = settings.env.twilio_auth_token
        assert token is not None, "the demo needs TWILIO_AUTH_TOKEN (serve --demo sets one)"
        self._token = token.get_secret_value()
        self._validator = RequestValidator(self._token)
        # Read once at start (a small file): every answered call with a stream plays it.
        self._audio = audio if audio is not None else demo_call_audio()
        self._speed = speed
        self._base = settings.public_url
        self._calls: dict[str, SimCall] = {}
        self._talk = talk_s
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10)
        return self._http

    async def post(self, url: str, params: dict[str, str]) -> str:
        signature = self._validator.compute_signature(url, params)
        resp = await self._client().post(
            url, data=params, headers={"X-Twilio-Signature": signature}
        )
        return resp.text

    async def place_call(self, caller: str, dialed: str) -> None:
        sid = "CA" + secrets.token_hex(16)
        call = SimCall(sid=sid, caller=caller, dialed=dialed)
        self._calls[sid] = call
        twiml = await self.post(
            f"{self._base}/twilio/voice",
            {"CallSid": sid, "From": caller, "To": dialed, "CallStatus": "ringing"},
        )
        self._follow(call, twiml)

    def _follow(self, call: SimCall, twiml: str) -> None:
        """Read the TwiML like Twilio would: a Dial rings an agent, an Enqueue waits."""
        with contextlib.suppress(ET.ParseError):
            root = ET.fromstring(twiml)
            stream = root.find("Start/Stream")
            if stream is not None and stream.get("url"):
                call.stream_url = stream.get("url")
                call.stream_params = {
                    p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")
                }
            dial = root.find("Dial")
            if dial is not None:
                query = parse_qs(urlparse(dial.get("action", "")).query)
                call.call_id = query.get("call_id", [call.call_id or ""])[0]
            enqueue = root.find("Enqueue")
            if enqueue is not None:
                query = parse_qs(urlparse(enqueue.get("action", "")).query)
                call.call_id = query.get("call_id", [call.call_id or ""])[0]
            if root.find("Hangup") is not None:
                call.done.set()

    def answered(self, call_id: str) -> None:
        """A simulated agent picked up: talk a while, then both legs complete."""
        call = next((c for c in self._calls.values() if c.call_id == call_id), None)
        if call is not None:
            self._spawn(self._talk_then_hang_up(call))

    async def _talk_then_hang_up(self, call: SimCall) -> None:
        if call.stream_url is not None:
            # The conversation itself is the talk time: both tracks, in real time.
            try:
                await play_stream(
                    call.stream_url,
                    self._audio,
                    auth_token=self._token,
                    call_sid=call.sid,
                    params=call.stream_params,
                    speed=self._speed,
                )
            except (OSError, RuntimeError, websockets.WebSocketException) as exc:
                log.warning("demo media stream failed", extra={"error": type(exc).__name__})
        else:
            await asyncio.sleep(self._rng.uniform(*self._talk))
        await self.post(
            f"{self._base}/twilio/dial-status?call_id={call.call_id}",
            {"CallSid": call.sid, "DialCallStatus": "completed", "DialCallDuration": "30"},
        )
        await self.post(
            f"{self._base}/twilio/status", {"CallSid": call.sid, "CallStatus": "completed"}
        )
        call.done.set()
        self._calls.pop(call.sid, None)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # CallControl: Twilio's REST API, played locally.
    async def redirect(self, provider_call_id: str, url: str) -> None:
        call = self._calls.get(provider_call_id)
        if call is None:
            return
        twiml = await self.post(url, {"CallSid": provider_call_id, "CallStatus": "in-progress"})
        self._follow(call, twiml)

    async def hangup(self, provider_call_id: str) -> None:
        call = self._calls.pop(provider_call_id, None)
        if call is not None:
            await self.post(
                f"{self._base}/twilio/status", {"CallSid": call.sid, "CallStatus": "completed"}
            )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()


async def _sim_agent(settings: Settings, telephony: DemoTelephony, agent_id: str) -> None:
    token = issue_token(
        settings.token_secret(), Principal(role="agent", subject=agent_id), SystemClock().now()
    )
    ws_base = settings.public_url.replace("http", "ws", 1)
    rng = random.Random(agent_id)
    headers = {"Authorization": f"Bearer {token}"}  # a header keeps the token out of access logs
    async with websockets.connect(f"{ws_base}/ws/agent", additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "state", "state": Presence.AVAILABLE.value}))
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("type") != "call.offered":
                continue
            await asyncio.sleep(rng.uniform(0.3, 2.0))
            if rng.random() < 0.1:
                await ws.send(json.dumps({"type": "reject", "call_id": msg["call_id"]}))
                continue
            await ws.send(json.dumps({"type": "accept", "call_id": msg["call_id"]}))
            telephony.answered(msg["call_id"])


async def _sim_callers(settings: Settings, telephony: DemoTelephony, every_s: float) -> None:
    rng = random.Random(7)
    numbers = [t.number for t in settings.deployment.tracking_numbers] or ["+15005550199"]
    while True:
        caller = rng.choice(CALLERS)
        dialed = rng.choice([*numbers, "+15005550199"])
        with contextlib.suppress(httpx.HTTPError):
            await telephony.place_call(caller, dialed)
        await asyncio.sleep(rng.expovariate(1 / every_s))


async def run_with_demo(server: object, settings: Settings, telephony: object) -> None:
    """Run the uvicorn server with simulated agents and callers until it stops."""
    import uvicorn

    assert isinstance(server, uvicorn.Server) and isinstance(telephony, DemoTelephony)
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    sims: list[asyncio.Task[None]] = []
    if server.started:
        for agent in settings.deployment.agents:
            sims.append(asyncio.create_task(_sim_agent(settings, telephony, agent.id)))
        sims.append(asyncio.create_task(_sim_callers(settings, telephony, every_s=3.0)))
    try:
        await serving
    finally:
        for task in sims:
            task.cancel()
        await asyncio.gather(*sims, return_exceptions=True)
