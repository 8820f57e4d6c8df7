"""End-to-end fixtures: a real Loopline node on a free port, a Twilio REST recorder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
import yaml

from loopline.config import Settings, load_settings
from loopline.domain.clock import SystemClock
from loopline.web.app import build_app
from loopline.web.auth import Principal, issue_token
from loopline.web.node import Node
from tests.support import ACCOUNT_SID, AUTH_TOKEN, RestRecorder, TwilioSigner, free_port, serve

DEMO = Path(__file__).parents[2] / "config" / "loopline.yaml"
TOKEN_SECRET = "e2e-token-secret-0123456789abcdef-0123456789"


def write_settings(
    tmp_path: Path,
    *,
    port: int,
    rest_url: str,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    data = yaml.safe_load(DEMO.read_text())
    data["crm"]["file"] = str(DEMO.parent / "crm.yaml")
    if mutate:
        mutate(data)
    path = tmp_path / f"loopline-{port}.yaml"
    path.write_text(yaml.safe_dump(data))
    environ = {
        "LOOPLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOOPLINE_RECORDS_URL": f"sqlite+aiosqlite:///{tmp_path}/records.db",
        "LOOPLINE_TOKEN_SECRET": TOKEN_SECRET,
        "LOOPLINE_TWILIO_API_BASE_URL": rest_url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        **(env or {}),
    }
    return load_settings(path, environ=environ)


def token_for(role: str, subject: str) -> str:
    return issue_token(TOKEN_SECRET, Principal(role=role, subject=subject), SystemClock().now())  # type: ignore[arg-type]


@dataclass
class Running:
    base: str
    node: Node
    signer: TwilioSigner
    http: httpx.AsyncClient
    rest: RestRecorder
    app: Any = None  # the ASGI app (its routes, for the route x role table)

    async def voice(self, sid: str, caller: str, dialed: str = "+15005550100") -> httpx.Response:
        return await self.signer.post(
            self.http,
            "/twilio/voice",
            {
                "CallSid": sid,
                "From": caller,
                "To": dialed,
                "CallStatus": "ringing",
                "AccountSid": ACCOUNT_SID,
            },
        )

    @asynccontextmanager
    async def agent(self, agent_id: str, *, available: bool = True) -> AsyncIterator[Any]:
        ws_url = self.base.replace("http", "ws", 1) + "/ws/agent"
        async with websockets.connect(
            ws_url, additional_headers={"Authorization": f"Bearer {token_for('agent', agent_id)}"}
        ) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello"
            if available:
                await ws.send(json.dumps({"type": "state", "state": "available"}))
                await next_of(ws, "ack")
            yield ws


async def next_of(ws: Any, kind: str, within: float = 5.0) -> dict[str, Any]:
    """The next message of one type on a socket, skipping others."""
    async with asyncio.timeout(within):
        while True:
            msg: dict[str, Any] = json.loads(await ws.recv())
            if msg.get("type") == kind:
                return msg


@pytest_asyncio.fixture
async def rest() -> AsyncIterator[tuple[RestRecorder, str]]:
    recorder = RestRecorder()
    port = free_port()
    async with serve(recorder.app(), port):
        yield recorder, f"http://127.0.0.1:{port}"


@pytest.fixture
def start_node(tmp_path: Path, rest: tuple[RestRecorder, str]):  # type: ignore[no-untyped-def]
    recorder, rest_url = rest

    @asynccontextmanager
    async def _start(
        mutate: Callable[[dict[str, Any]], None] | None = None,
        env: dict[str, str] | None = None,
        **overrides: Any,
    ) -> AsyncIterator[Running]:
        port = free_port()
        settings = write_settings(tmp_path, port=port, rest_url=rest_url, mutate=mutate, env=env)
        app = build_app(settings, sweep_interval_s=0.2, **overrides)
        async with serve(app, port), httpx.AsyncClient(timeout=10) as http:
            base = f"http://127.0.0.1:{port}"
            yield Running(base, app.state.node, TwilioSigner(base), http, recorder, app)

    return _start
