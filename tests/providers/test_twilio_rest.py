"""Call control against a real local HTTP server standing in for api.twilio.com."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from loopline.providers.twilio_rest import CallControlError, TwilioCallControl

ServeApp = Callable[[ASGIApp], AbstractAsyncContextManager[str]]

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "12345678901234567890123456789012"
CALL_SID = "CA5f3c0a8b9d2e4f6a1b7c8d9e0f1a2b3c"
CALL_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"


@dataclass
class Seen:
    method: str
    path: str
    form: dict[str, list[str]]
    authorization: str
    content_type: str


@dataclass
class FakeTwilio:
    """Answers like Twilio's Calls resource and records every request it gets."""

    status: int = 200
    delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def calls(self, request: Request) -> Response:
        body = (await request.body()).decode()
        self.seen.append(
            Seen(
                method=request.method,
                path=request.url.path,
                form=parse_qs(body),
                authorization=request.headers.get("authorization", ""),
                content_type=request.headers.get("content-type", ""),
            )
        )
        if self.delay_s:
            # Waits for the test to end rather than sleeping it out, so shutdown is quick.
            try:
                async with asyncio.timeout(self.delay_s):
                    await self.release.wait()
            except TimeoutError:
                pass
        call_sid = request.path_params["call_sid"]
        if self.status != 200:
            return JSONResponse(
                {
                    "code": 21220 if self.status == 400 else 20500,
                    "message": "Call is not in-progress. Cannot redirect.",
                    "more_info": "https://www.twilio.com/docs/errors/21220",
                    "status": self.status,
                },
                status_code=self.status,
            )
        return JSONResponse(
            {
                "sid": call_sid,
                "account_sid": request.path_params["account_sid"],
                "status": "in-progress",
                "direction": "inbound",
                "api_version": "2010-04-01",
                "uri": request.url.path,
            }
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(
                    "/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json",
                    self.calls,
                    methods=["POST"],
                )
            ]
        )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_redirect_posts_the_new_url(serve_app: ServeApp) -> None:
    twilio = FakeTwilio()
    async with serve_app(twilio.app()) as base_url:
        control = TwilioCallControl(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url)
        try:
            await control.redirect(CALL_SID, "https://node.example.com/twilio/connect?call_id=c1")
        finally:
            await control.close()
    assert len(twilio.seen) == 1
    seen = twilio.seen[0]
    assert (seen.method, seen.path) == ("POST", CALL_PATH)
    assert seen.form == {
        "Url": ["https://node.example.com/twilio/connect?call_id=c1"],
        "Method": ["POST"],
    }
    assert seen.authorization == _basic(ACCOUNT_SID, AUTH_TOKEN)
    assert seen.content_type.startswith("application/x-www-form-urlencoded")


async def test_hangup_completes_the_call(serve_app: ServeApp) -> None:
    twilio = FakeTwilio()
    async with serve_app(twilio.app()) as base_url:
        control = TwilioCallControl(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url + "/")
        try:
            await control.hangup(CALL_SID)
            await control.hangup(CALL_SID)  # the pooled connection is reused
        finally:
            await control.close()
    assert [(s.method, s.path, s.form) for s in twilio.seen] == [
        ("POST", CALL_PATH, {"Status": ["completed"]}),
        ("POST", CALL_PATH, {"Status": ["completed"]}),
    ]


@pytest.mark.parametrize(("status", "code"), [(400, 21220), (500, 20500)])
async def test_twilio_errors_raise_call_control_error(
    serve_app: ServeApp, status: int, code: int
) -> None:
    twilio = FakeTwilio(status=status)
    async with serve_app(twilio.app()) as base_url:
        control = TwilioCallControl(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url)
        try:
            with pytest.raises(CallControlError) as caught:
                await control.redirect(CALL_SID, "https://node.example.com/twilio/next")
        finally:
            await control.close()
    assert (caught.value.status, caught.value.code) == (status, code)
    assert str(caught.value) == f"twilio redirect failed: HTTP {status}, code {code}"


async def test_unknown_call_raises(serve_app: ServeApp) -> None:
    twilio = FakeTwilio()
    async with serve_app(twilio.app()) as base_url:
        control = TwilioCallControl(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url)
        try:
            with pytest.raises(CallControlError) as caught:
                # A path the server does not route: Starlette's plain-text 404.
                await control.hangup("CA../x")
        finally:
            await control.close()
    assert caught.value.status == 404


async def test_slow_twilio_raises_within_the_timeout(serve_app: ServeApp) -> None:
    twilio = FakeTwilio(delay_s=5.0)
    async with serve_app(twilio.app()) as base_url:
        control = TwilioCallControl(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url, timeout_s=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            with pytest.raises(CallControlError, match="redirect failed"):
                await control.redirect(CALL_SID, "https://node.example.com/twilio/next")
        finally:
            elapsed = loop.time() - started
            twilio.release.set()
            await control.close()
    assert elapsed < 1.5
    assert len(twilio.seen) == 1


async def test_unreachable_twilio_raises(serve_app: ServeApp) -> None:
    # A port that was just free: nothing listens there.
    async with serve_app(FakeTwilio().app()) as base_url:
        pass
    control = TwilioCallControl(ACCOUNT_SID, AUTH_TOKEN, base_url=base_url, timeout_s=2)
    try:
        with pytest.raises(CallControlError, match="hangup failed"):
            await control.hangup(CALL_SID)
    finally:
        await control.close()


@pytest.mark.parametrize(
    ("sid", "token", "timeout_s"), [("", "t", 5.0), ("AC1", "", 5.0), ("AC1", "t", 0.0)]
)
def test_rejects_bad_settings(sid: str, token: str, timeout_s: float) -> None:
    with pytest.raises(ValueError):
        TwilioCallControl(sid, token, timeout_s=timeout_s)


async def test_close_without_use_is_fine() -> None:
    await TwilioCallControl(ACCOUNT_SID, AUTH_TOKEN).close()
