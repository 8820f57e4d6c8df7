"""`WS /ws/agent` and `WS /ws/supervisor`: sockets fed by the hub.

Who: a bearer token or API key (header, or `?token=`), or the pages' session cookie (then
the handshake must come from our own origin). Resuming: `?after=<event id>` (see
`agents.hub`). Every message that carries a bus event has its `id`; an idle socket gets
`{"type": "heartbeat"}` every `hub.heartbeat_s`, so a client that hears nothing for a few of
those knows its connection is stale and reconnects. Supervisors get at most one frame per
`hub.tick_s`; with `?batch=1` the frame is `{"type": "batch", "events": [...]}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError

from loopline.agents.hub import TOO_SLOW, Connection
from loopline.domain.agents import Presence
from loopline.domain.clock import Clock
from loopline.domain.events import Event
from loopline.state.base import StateUnavailable
from loopline.state.encoding import parse_event_id
from loopline.web.auth import Principal
from loopline.web.node import Node
from loopline.web.session_auth import AuthFailed, resolve_caller

log = logging.getLogger(__name__)
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
SETTABLE = {Presence.AVAILABLE, Presence.AWAY, Presence.WRAP_UP, Presence.OFFLINE}
# What the sockets want of the ASGI server (`loopline serve` passes these to uvicorn). No
# per-message deflate: the messages are small JSON, and each socket compresses with its own
# context, so fanning one event out to 500 desktops would compress it 500 times.
SERVER_OPTIONS: dict[str, Any] = {"ws_per_message_deflate": False}
# A catch-up from the bus stops after this long, or once the bus has been quiet this long.
CATCH_UP_S = 3.0
CATCH_UP_IDLE_S = 0.3


class AgentCommand(BaseModel):
    type: str
    state: Presence | None = None
    call_id: str | None = None
    reason: str | None = None


async def _authenticate(ws: WebSocket, node: Node) -> Principal | None:
    await ws.accept()
    try:
        caller = await resolve_caller(
            ws,
            token_secret=node.settings.token_secret(),
            users=node.access.users if node.access is not None else None,
            public_url=node.settings.public_url,
            method="WEBSOCKET",
        )
    except AuthFailed as exc:
        code = CLOSE_FORBIDDEN if exc.status == 403 else CLOSE_UNAUTHORIZED
        await ws.close(code=code, reason=exc.message)
        return None
    if caller is None:
        await ws.close(code=CLOSE_UNAUTHORIZED, reason="missing bearer token")
        return None
    return caller.principal


async def _resume_point(ws: WebSocket) -> tuple[bool, str | None]:
    """(ok, after): the `after` query parameter, checked; a bad one closes the socket."""
    after = ws.query_params.get("after") or None
    if after is None:
        return True, None
    try:
        parse_event_id(after)
    except ValueError:
        await ws.close(code=CLOSE_BAD_REQUEST, reason="after: not an event id")
        return False, None
    return True, after


async def _catch_up(node: Node, conn: Connection, after: str) -> None:
    """Read back from the bus what the hub's ring no longer holds, and put it in front."""
    got: list[tuple[str, Event]] = []
    until = conn.first_id
    try:
        async with node.bus.subscribe(after=after) as sub, asyncio.timeout(CATCH_UP_S):
            events = aiter(sub)
            while True:
                try:
                    event_id, event = await asyncio.wait_for(anext(events), CATCH_UP_IDLE_S)
                except (TimeoutError, StopAsyncIteration):
                    break
                until = until or conn.first_id
                if until is not None and parse_event_id(event_id) >= until:
                    break
                got.append((event_id, event))
    except (TimeoutError, StateUnavailable):
        log.warning("socket catch-up from the bus cut short", extra={"role": conn.role})
    conn.prepend(node.hub.catch_up_messages(conn, got, until))


async def _pump(ws: WebSocket, conn: Connection, node: Node, *, batch: bool = False) -> None:
    """Send the connection's outbox; close the socket if it fell too far behind."""
    loop = asyncio.get_running_loop()
    hub = node.hub
    tick = hub.tick_s if conn.coalesce else 0.0
    last_flush = float("-inf")
    while True:
        await conn.wait()
        if tick:
            # Leading edge: a quiet socket gets an event at once, a busy one once per tick.
            due = last_flush + tick - loop.time()
            if due > 0:
                await asyncio.sleep(due)
        messages = conn.take()
        if TOO_SLOW in messages:
            await ws.close(code=CLOSE_TOO_SLOW, reason="too slow: reconnect to resume")
            return
        if batch:
            await ws.send_text('{"type":"batch","events":[' + ",".join(messages) + "]}")
        else:
            for message in messages:
                await ws.send_text(message)
        last_flush = loop.time()


async def _serve(ws: WebSocket, conn: Connection, node: Node, receive: Any, batch: bool) -> None:
    """Run sender and receiver together; when either ends the other is cancelled."""
    try:
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(_pump(ws, conn, node, batch=batch), name=f"ws-send-{conn.role}")
            receiver = tg.create_task(receive(), name=f"ws-recv-{conn.role}")
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sender, receiver):
                if task not in done:
                    task.cancel()
    except* (WebSocketDisconnect, RuntimeError):
        pass


def _error(message: str) -> str:
    return json.dumps({"type": "error", "error": message})


def build_socket_router() -> APIRouter:
    api = APIRouter()

    @api.websocket("/ws/agent")
    async def agent_socket(ws: WebSocket) -> None:
        node: Node = ws.app.state.node
        principal = await _authenticate(ws, node)
        if principal is None:
            return
        if principal.role != "agent" or principal.subject not in node.agents:
            await ws.close(code=CLOSE_FORBIDDEN, reason="not a configured agent")
            return
        agent_id = principal.subject
        ok, after = await _resume_point(ws)
        if not ok:
            return
        conn = node.hub.add_agent(agent_id, after=after)
        try:
            if after is not None and not node.hub.covers(after):
                await _catch_up(node, conn, after)
            hello: dict[str, Any] = {
                "type": "hello",
                "agent_id": agent_id,
                "heartbeat_s": node.hub.heartbeat_s,
            }
            with contextlib.suppress(StateUnavailable):
                state = await node.state.get_agent(agent_id)
                if state is not None:
                    hello["state"] = state.presence.value
                    hello["state_since"] = (
                        state.presence_since.isoformat() if state.presence_since else None
                    )
            await ws.send_text(json.dumps(hello))

            async def receive() -> None:
                while True:
                    raw = await ws.receive_text()
                    reply = await _agent_command(node, agent_id, raw)
                    conn.offer(reply)

            await _serve(ws, conn, node, receive, batch=False)
        finally:
            node.hub.remove(conn)
            if not node.hub.agent_connected(agent_id):
                await _went_away(node, agent_id, node.clock)

    @api.websocket("/ws/supervisor")
    async def supervisor_socket(ws: WebSocket) -> None:
        node: Node = ws.app.state.node
        principal = await _authenticate(ws, node)
        if principal is None:
            return
        if principal.role not in ("supervisor", "admin"):
            await ws.close(code=CLOSE_FORBIDDEN, reason="supervisor role required")
            return
        ok, after = await _resume_point(ws)
        if not ok:
            return
        conn = node.hub.add_supervisor(principal.subject, after=after)
        try:
            if after is not None and not node.hub.covers(after):
                await _catch_up(node, conn, after)
            hello = {
                "type": "hello",
                "supervisor": principal.subject,
                "heartbeat_s": node.hub.heartbeat_s,
            }
            await ws.send_text(json.dumps(hello))

            async def receive() -> None:
                while True:
                    await ws.receive_text()  # supervisors only listen; pings keep it alive

            await _serve(ws, conn, node, receive, batch=ws.query_params.get("batch") == "1")
        finally:
            node.hub.remove(conn)

    return api


async def _agent_command(node: Node, agent_id: str, raw: str) -> str:
    try:
        cmd = AgentCommand.model_validate_json(raw)
    except ValidationError:
        return _error("bad message: expected JSON with a known type")
    try:
        if cmd.type == "state":
            if cmd.state is None or cmd.state not in SETTABLE:
                return _error("state must be one of available, away, wrap-up, offline")
            await node.router.set_presence(agent_id, cmd.state)
            return json.dumps({"type": "ack", "of": "state", "state": cmd.state.value})
        if cmd.type in ("accept", "reject"):
            if not cmd.call_id:
                return _error(f"{cmd.type} needs call_id")
            if cmd.type == "accept":
                ok = await node.router.accept(agent_id, cmd.call_id)
            else:
                ok = await node.router.reject(agent_id, cmd.call_id, cmd.reason or "rejected")
            body: dict[str, Any] = {"type": "ack", "of": cmd.type, "call_id": cmd.call_id}
            body["ok"] = ok
            if not ok:
                body["error"] = "no such offer (expired or already moved on)"
            return json.dumps(body)
        if cmd.type == "ping":
            return json.dumps({"type": "pong"})
        return _error(f"unknown message type {cmd.type!r}")
    except StateUnavailable:
        return _error("live state unavailable; try again")


async def _went_away(node: Node, agent_id: str, clock: Clock) -> None:
    """The agent's last socket closed: stop offering them calls (calls in hand continue)."""
    with contextlib.suppress(StateUnavailable, KeyError):
        state = await node.state.get_agent(agent_id)
        if state is not None and state.presence == Presence.AVAILABLE:
            await node.agents.set_presence(agent_id, Presence.OFFLINE, clock.now())
