"""Call control over Twilio's REST API: move a live call to new TwiML, or hang it up.

This is the one place the providers room does I/O; the router calls it when a call must change
course outside a webhook (an agent rejected the offer, a queued call found an agent).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client


class CallControlError(Exception):
    """A call-control request failed. `status` and `code` are Twilio's when it answered
    (e.g. 404, or 21220 for a call that is no longer in progress); the message holds no
    personal data."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class CallControl(ABC):
    """Commands to a live call at the provider."""

    @abstractmethod
    async def redirect(self, provider_call_id: str, url: str) -> None:
        """Make the provider fetch new instructions (TwiML) for the call from `url` (POST)."""

    @abstractmethod
    async def hangup(self, provider_call_id: str) -> None:
        """End the call."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most controls hold nothing
        """Release connections; the control is not used afterwards."""


class _HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]
    """The `twilio` library's async HTTP client interface, on httpx.

    Twilio's own aiohttp client trips aiohttp's deprecation of `BasicAuth` (an error under our
    warnings policy) and never applies its client-wide timeout; this one does neither, and can
    point at `base_url` instead of api.twilio.com.
    """

    def __init__(self, *, base_url: str | None, timeout_s: float) -> None:
        super().__init__(logging.getLogger(__name__), True, timeout_s)
        self._base_url = base_url.rstrip("/") if base_url else None
        self._http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's HttpClient signature
        allow_redirects: bool = False,
    ) -> Response:
        if self._base_url is not None:
            # Keep the path and query, whatever edge or region host the client chose.
            parts = urlsplit(url)
            url = self._base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        response = await self._http.request(
            method,
            url,
            params=cast(Any, params),
            data=cast(Any, data),
            headers=headers,
            auth=auth,
            timeout=self.timeout if timeout is None else timeout,
            follow_redirects=allow_redirects,
        )
        return Response(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        await self._http.aclose()


class TwilioCallControl(CallControl):
    """`CallControl` with the `twilio` library's REST client, on an async HTTP client.

    `base_url` replaces `https://api.twilio.com` (tests, or a recording proxy). Each request
    has `timeout_s` in all; a slow or failing Twilio raises `CallControlError`.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 5,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("account_sid and auth_token are required")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._base_url = base_url
        self._timeout_s = timeout_s
        # Created on first use, so that building the control at start-up opens nothing.
        self._http: _HttpxTwilioClient | None = None
        self._client: Any = None

    async def redirect(self, provider_call_id: str, url: str) -> None:
        await self._update("redirect", provider_call_id, url=url, method="POST")

    async def hangup(self, provider_call_id: str) -> None:
        await self._update("hangup", provider_call_id, status="completed")

    async def close(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()

    async def _update(self, action: str, provider_call_id: str, **fields: str) -> None:
        if not provider_call_id:
            raise ValueError("provider_call_id is empty")
        client = self._rest_client()
        try:
            async with asyncio.timeout(self._timeout_s):
                await client.api.v2010.account.calls(provider_call_id).update_async(**fields)
        except TwilioRestException as exc:
            raise CallControlError(
                f"twilio {action} failed: HTTP {exc.status}, code {exc.code}",
                status=exc.status,
                code=exc.code,
            ) from exc
        except (TwilioException, httpx.HTTPError, TimeoutError, OSError) as exc:
            raise CallControlError(f"twilio {action} failed: {type(exc).__name__}") from exc

    def _rest_client(self) -> Any:
        if self._client is None:
            self._http = _HttpxTwilioClient(base_url=self._base_url, timeout_s=self._timeout_s)
            self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
        return self._client
