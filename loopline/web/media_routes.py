"""`WS /twilio/media` (Twilio Media Streams) and `GET /metrics` (Prometheus text).

The upgrade request must carry Twilio's signature of the `wss://` URL. Inside the socket nothing
raises: a message the reader cannot use is counted and logged by kind, a stream for a call
this deployment does not know is read and discarded, and only a socket that sends nothing but
garbage is closed.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Final

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse

from loopline.media.engine import MediaEngine
from loopline.media.stream import StreamSession
from loopline.providers.twilio_media import (
    DtmfDigit,
    MediaChunk,
    MediaStreamReader,
    Rejected,
    StreamStarted,
    StreamStopped,
)
from loopline.state.base import StateUnavailable
from loopline.web.node import Node

log = logging.getLogger(__name__)

CLOSE_POLICY: Final = 1008
# A socket whose first this-many messages are all unusable is not a Twilio stream.
GARBAGE_LIMIT: Final = 20
# Past this many unusable messages in a row a stream is broken beyond use.
CONSECUTIVE_LIMIT: Final = 500
_LOGGED_REJECTS: Final = 5


def stream_url(public_url: str, path: str, query: str = "") -> str:
    """The URL Twilio signed: the public base with a websocket scheme."""
    base = public_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return base + path + (f"?{query}" if query else "")


def _media(node: Node) -> MediaEngine | None:
    return node.media


def build_media_router() -> APIRouter:
    api = APIRouter(tags=["media"])

    @api.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        node: Node = request.app.state.node
        engine = _media(node)
        body = ""
        if engine is not None:
            engine.workers.lag_seconds()
            body = engine.metrics.prometheus()
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4")

    @api.websocket("/twilio/media")
    async def media_stream(ws: WebSocket) -> None:
        node: Node = ws.app.state.node
        engine = _media(node)
        url = stream_url(node.settings.public_url, ws.url.path, ws.url.query)
        signature = ws.headers.get("x-twilio-signature")
        if (
            engine is None
            or node.signatures is None
            or not node.signatures.check_websocket(url, signature)
        ):
            log.warning("media stream refused: signature missing or wrong")
            await ws.close(code=CLOSE_POLICY)  # before accept: the client gets HTTP 403
            return
        await ws.accept()
        await _serve(ws, node, engine)

    return api


async def _serve(ws: WebSocket, node: Node, engine: MediaEngine) -> None:
    reader = MediaStreamReader()
    metrics = engine.metrics
    consecutive = 0
    logged = 0
    async with contextlib.AsyncExitStack() as stack:
        session: StreamSession | None = None
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                result = reader.feed(raw)
                if isinstance(result, MediaChunk):
                    consecutive = 0
                    metrics.frames_total += 1
                    if session is not None:
                        session.on_media(result)
                    continue
                if isinstance(result, Rejected):
                    consecutive += 1
                    metrics.reject(result.kind)
                    if logged < _LOGGED_REJECTS:
                        logged += 1
                        log.info("media message rejected", extra={"kind": result.kind})
                    if (reader.accepted == 0 and consecutive >= GARBAGE_LIMIT) or (
                        consecutive >= CONSECUTIVE_LIMIT
                    ):
                        log.warning("media socket closed: only unusable messages")
                        await ws.close(code=CLOSE_POLICY, reason="unusable messages")
                        break
                    continue
                consecutive = 0
                if isinstance(result, StreamStarted):
                    session = await _open(node, engine, result)
                    if session is not None:
                        await stack.enter_async_context(session)
                        metrics.streams_total += 1
                        metrics.streams_active += 1
                        stack.callback(_closed, engine)
                elif isinstance(result, DtmfDigit):
                    if session is not None:
                        await session.on_dtmf(result)
                elif isinstance(result, StreamStopped):
                    break
        except WebSocketDisconnect:
            pass
    # The session's finals are out (or the drain gave up): the socket can go.
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.close()


def _closed(engine: MediaEngine) -> None:
    engine.metrics.streams_active -= 1


async def _open(node: Node, engine: MediaEngine, started: StreamStarted) -> StreamSession | None:
    """The session for a stream, or None (counted, logged) when its call is not ours."""
    call_id = started.custom_parameters.get("call_id")
    live = None
    if call_id:
        try:
            live = await node.state.get_call(call_id)
        except StateUnavailable:
            engine.metrics.reject("state_unavailable")
            log.warning("media stream for a call whose live state is unreachable")
            return None
    # The call must be live and be the very call Twilio says it streams.
    if call_id is None or live is None or live.provider_call_id != started.call_sid:
        engine.metrics.reject("unknown_call")
        log.warning("media stream for an unknown call; its audio is discarded")
        return None

    async def agent_lookup() -> str | None:
        call = await node.state.get_call(call_id)
        return call.agent_id if call is not None else None

    return engine.session(call_id, agent_lookup=agent_lookup, tracks=started.tracks)
