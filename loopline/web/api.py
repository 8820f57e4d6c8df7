"""The JSON API: agents, calls, health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from loopline.domain.calls import CallState
from loopline.records.models import CallRecord
from loopline.state.base import StateUnavailable
from loopline.web.auth import Principal, TokenError, bearer_from, verify_token
from loopline.web.node import Node
from loopline.web.session_auth import AuthFailed, Caller, audit, resolve_caller


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def caller(request: Request) -> Caller:
    """A bearer token, an API key or the pages' session cookie (`web.session_auth`)."""
    node = _node(request)
    try:
        found = await resolve_caller(
            request,
            token_secret=node.settings.token_secret(),
            users=node.access.users if node.access is not None else None,
            public_url=node.settings.public_url,
            method=request.method,
        )
    except AuthFailed as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        raise HTTPException(exc.status, exc.message, headers=headers) from None
    if found is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return found


By = Annotated[Caller, Depends(caller)]


def principal(request: Request) -> Principal:
    """The bearer token's principal (synchronous: no API keys, no cookies; see `caller`)."""
    token = bearer_from(request.headers.get("authorization"), request.query_params.get("token"))
    if token is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        return verify_token(_node(request).settings.token_secret(), token)
    except TokenError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


async def who_is(by: By) -> Principal:
    return by.principal


Who = Annotated[Principal, Depends(who_is)]


def handled_by(record: CallRecord | None, live: CallState | None) -> set[str]:
    """The agents a call was offered to or taken by: the agents who may open it."""
    handled: set[str | None] = set()
    if record is not None:
        handled |= {o.agent_id for o in record.offers}
        handled.add(record.agent_id)
    if live is not None:
        handled |= {*live.tried_agents, live.agent_id}
    return {agent for agent in handled if agent}


async def fetch_call(
    node: Node, call_id: str, by: Caller
) -> tuple[CallRecord | None, CallState | None]:
    """The call's record (or live state) if `by` may open it; 404 / 403 otherwise. Every
    opening, granted or refused, goes in the audit log (no audit, no record: 503)."""
    record = await node.records.get_call(call_id)
    live = None
    if record is None:
        try:
            live = await node.state.get_call(call_id)
        except StateUnavailable:
            live = None
    if record is None and live is None:
        raise HTTPException(404, "no such call")
    who = by.principal
    allowed = who.role != "agent" or who.subject in handled_by(record, live)
    await audit(node, by.actor, "call.read", target=call_id, outcome="ok" if allowed else "denied")
    if not allowed:
        raise HTTPException(403, "not your call")
    return record, live


def build_api_router() -> APIRouter:
    api = APIRouter()

    @api.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse(await _node(request).health())

    @api.get("/v1/agents")
    async def list_agents(request: Request, who: Who) -> list[dict[str, Any]]:
        if who.role not in ("supervisor", "admin"):
            raise HTTPException(403, "supervisor role required")
        node = _node(request)
        try:
            snapshots = await node.agents.snapshots()
        except StateUnavailable as exc:
            raise HTTPException(503, "live state unavailable") from exc
        return [
            {
                "id": s.agent.id,
                "name": s.agent.name,
                "skills": s.agent.skills,
                "capacity": s.agent.capacity,
                "presence": s.state.presence.value,
                "presence_since": s.state.presence_since,
                "reserved": s.state.reserved,
                "active": s.state.active,
                "calls_today": s.state.calls_today,
            }
            for s in snapshots
        ]

    @api.get("/v1/calls/{call_id}")
    async def get_call(request: Request, call_id: str, by: By) -> dict[str, Any]:
        record, live = await fetch_call(_node(request), call_id, by)
        if record is not None:
            return record.model_dump(mode="json")
        assert live is not None
        return {"live": True, **live.model_dump(mode="json")}

    return api
