"""The JSON API: agents, calls, health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from loopline.state.base import StateUnavailable
from loopline.web.auth import Principal, TokenError, bearer_from, verify_token
from loopline.web.node import Node


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def principal(request: Request) -> Principal:
    token = bearer_from(request.headers.get("authorization"), request.query_params.get("token"))
    if token is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        return verify_token(_node(request).settings.token_secret(), token)
    except TokenError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


Who = Annotated[Principal, Depends(principal)]


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
    async def get_call(request: Request, call_id: str, who: Who) -> dict[str, Any]:
        node = _node(request)
        record = await node.records.get_call(call_id)
        live = None
        if record is None:
            try:
                live = await node.state.get_call(call_id)
            except StateUnavailable:
                live = None
        if record is None and live is None:
            raise HTTPException(404, "no such call")
        if who.role == "agent":
            handled: set[str | None] = set()
            if record is not None:
                handled |= {o.agent_id for o in record.offers}
                handled.add(record.agent_id)
            if live is not None:
                handled |= {*live.tried_agents, live.agent_id}
            if who.subject not in handled:
                raise HTTPException(403, "not your call")
        if record is not None:
            return record.model_dump(mode="json")
        assert live is not None
        return {"live": True, **live.model_dump(mode="json")}

    return api
