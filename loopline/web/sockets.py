"""`WS /ws/agent` and `WS /ws/supervisor`: bearer-token sockets fed by the hub."""

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
from loopline.state.base import StateUnavailable
from loopline.web.auth import Principal, TokenError, bearer_from, verify_token
from loopline.web.node import Node

log = logging.getLogger(__name__)
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
SETTABLE = {Presence.AVAILABLE, Presence.AWAY, Presence.WRAP_UP, Presence.OFFLINE}


class AgentCommand(BaseModel):
    type: str
    state: Presence | None = None
    call_id: str | None = None
    reason: str | None = None


async def _authenticate(ws: WebSocket, node: Node) -> Principal | None:
    token = bearer_from(ws.headers.get("authorization"), ws.query_params.get("token"))
    await ws.accept()
    if token is None:
        await ws.close(code=CLOSE_UNAUTHORIZED, reason="missing bearer token")
        return None
    try:
        return verify_token(node.settings.token_secret(), token)
    except TokenError as exc:
        await ws.close(code=CLOSE_UNAUTHORIZED, reason=str(exc))
        return None


async def _pump(ws: WebSocket, conn: Connection) -> None:
    """Send the connection's outbox; close the socket if it fell too far behind."""
    while True:
        message = await conn.outbox.get()
        if message == TOO_SLOW:
            await ws.close(code=CLOSE_TOO_SLOW, reason="too slow: reconnect to resume")
            return
        await ws.send_text(message)


async def _serve(ws: WebSocket, conn: Connection, receive: Any) -> None:
    """Run sender and receiver together; when either ends the other is cancelled."""
    try:
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(_pump(ws, conn), name=f"ws-send-{conn.role}")
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
        conn = node.hub.add_agent(agent_id)
        try:
            state = await node.state.get_agent(agent_id)
            hello = {"type": "hello", "agent_id": agent_id}
            if state is not None:
                hello["state"] = state.presence.value
            await ws.send_text(json.dumps(hello))

            async def receive() -> None:
                while True:
                    raw = await ws.receive_text()
                    reply = await _agent_command(node, agent_id, raw)
                    conn.offer(reply)

            await _serve(ws, conn, receive)
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
        conn = node.hub.add_supervisor(principal.subject)
        try:
            await ws.send_text(json.dumps({"type": "hello", "supervisor": principal.subject}))

            async def receive() -> None:
                while True:
                    await ws.receive_text()  # supervisors only listen; pings keep it alive

            await _serve(ws, conn, receive)
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
