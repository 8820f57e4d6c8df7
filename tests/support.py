"""Helpers for tests that run real servers: free ports, uvicorn in-process, Twilio signing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[uvicorn.Server]:
    """Run an ASGI app on a real socket for the duration of the block."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name=f"uvicorn-{port}")
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        assert server.started, "server did not start"
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


class TwilioSigner:
    """Signs webhooks exactly as Twilio does, with the real `twilio` library."""

    def __init__(self, base_url: str, token: str = AUTH_TOKEN) -> None:
        self.base = base_url.rstrip("/")
        self.validator = RequestValidator(token)

    def headers(self, url: str, params: dict[str, str]) -> dict[str, str]:
        return {"X-Twilio-Signature": self.validator.compute_signature(url, params)}

    async def post(
        self, client: httpx.AsyncClient, path_or_url: str, params: dict[str, str]
    ) -> httpx.Response:
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        return await client.post(url, data=params, headers=self.headers(url, params))


@dataclass
class RestRecorder:
    """A local stand-in for api.twilio.com that records each request it gets."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    fail_with: int | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/2010-04-01/Accounts/{sid}/Calls/{call_sid}.json")
        async def update_call(sid: str, call_sid: str, request: Request) -> JSONResponse:
            form = await request.form()
            self.requests.append(
                {
                    "account": sid,
                    "call_sid": call_sid,
                    "form": dict(form),
                    "auth": request.headers.get("authorization"),
                }
            )
            self.arrived.set()
            if self.fail_with:
                return JSONResponse({"message": "failure on demand"}, status_code=self.fail_with)
            return JSONResponse({"sid": call_sid, "account_sid": sid, "status": "in-progress"})

        return app

    async def wait_for(self, n: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.requests) < n:
                self.arrived.clear()
                await self.arrived.wait()
