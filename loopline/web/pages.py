"""The pages people use: sign-in, `/agent` (the desktop), `/supervisor` (the live monitor).

The pages are plain HTML, CSS and ES modules under `static/`, with no build step; the one
library they use (uPlot, for the charts) is installed from npm by `make install` into
`static/vendor/`. Nothing is fetched from another origin: the Content-Security-Policy says so.
The data comes from the JSON routes here and the sockets (`web.sockets`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from loopline.compliance.users import UserError
from loopline.domain.calls import CallStatus
from loopline.state.base import StateUnavailable
from loopline.web.api import By, fetch_call
from loopline.web.node import Node
from loopline.web.session_auth import (
    COOKIE,
    SESSION_TTL_S,
    SIGNIN_REFUSED,
    AuthFailed,
    Caller,
    SignInGate,
    audit,
    issue_session,
    resolve_caller,
    same_origin,
    session_for,
)

STATIC = Path(__file__).parent / "static"
ASSET_DIRS = ("agent", "supervisor", "common", "vendor")
HOME = {"agent": "/agent", "supervisor": "/supervisor", "admin": "/supervisor"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MONITOR_CALLS = 500
MONITOR_TODAY = 5_000  # calls read for today's service level


def service_levels(records: list[Any], targets: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Per queue: (calls answered, of which within the queue's service-level seconds)."""
    out: dict[str, tuple[int, int]] = {}
    for record in records:
        target = targets.get(record.queue or "")
        if target is None or record.answered_at is None:
            continue
        answered, within = out.get(record.queue, (0, 0))
        waited = (record.answered_at - record.received_at).total_seconds()
        out[record.queue] = (answered + 1, within + (1 if waited <= target else 0))
    return out


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


def safe_next(raw: str | None, fallback: str) -> str:
    """Only a path on this site: never another host (`//evil`, `https://evil`, `/\\evil`)."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return fallback
    if any(ch in raw for ch in "\r\n\\"):
        return fallback
    return raw


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _caller(request: Request) -> Caller | None:
    node = _node(request)
    try:
        return await resolve_caller(
            request,
            token_secret=node.settings.token_secret(),
            users=node.access.users if node.access is not None else None,
            public_url=node.settings.public_url,
            method=request.method,
        )
    except AuthFailed:
        return None


def _page(name: str, status: int = 200) -> Response:
    return FileResponse(STATIC / name / "index.html", status_code=status, headers=PAGE_HEADERS)


def _plain_page(title: str, body: str, status: int) -> HTMLResponse:
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<link rel="icon" href="data:,">
<title>{html.escape(title)} · Loopline</title>
<link rel="stylesheet" href="/assets/common/base.css"></head>
<body class="plain"><main class="card narrow">{body}</main></body></html>"""
    return HTMLResponse(doc, status_code=status, headers=PAGE_HEADERS)


def signin_page(
    message: str | None, next_path: str, username: str = "", status: int = 200
) -> HTMLResponse:
    alert = (
        f'<p class="alert" role="alert" id="signin-error">{html.escape(message)}</p>'
        if message
        else ""
    )
    body = f"""
<h1>Sign in to Loopline</h1>
{alert}
<form method="post" action="/signin" class="stack" autocomplete="on">
  <input type="hidden" name="next" value="{html.escape(next_path)}">
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" required autofocus
         value="{html.escape(username)}" autocapitalize="none" spellcheck="false">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>"""
    return _plain_page("Sign in", body, status)


def _forbidden(message: str) -> HTMLResponse:
    body = (
        f'<h1>Not allowed</h1><p role="alert">{html.escape(message)}</p>'
        '<p><a href="/">Back to your page</a></p>'
    )
    return _plain_page("Not allowed", body, 403)


def _call_page(data: dict[str, Any]) -> HTMLResponse:
    context = data.get("context") or {}
    rows = [
        ("Call", data.get("call_id")),
        ("Status", data.get("status")),
        ("Queue", data.get("queue")),
        ("Agent", data.get("agent_id")),
        ("Received", data.get("received_at")),
        ("Answered", data.get("answered_at")),
        ("Ended", data.get("ended_at")),
        ("Duration (s)", data.get("duration_s")),
        ("Campaign", data.get("campaign") or context.get("campaign")),
        ("Intent", (context.get("intent") or {}).get("name")),
    ]
    table = "".join(
        f"<tr><th scope='row'>{html.escape(k)}</th><td>{html.escape(str(v or '—'))}</td></tr>"
        for k, v in rows
    )
    decisions = "".join(
        f"<li>{html.escape(str(d.get('policy')))}: {html.escape(str(d.get('reason')))}</li>"
        for d in data.get("decisions", [])
    )
    body = (
        f"<h1>Call {html.escape(str(data.get('call_id')))}</h1>"
        f'<table class="facts">{table}</table>'
        f"<h2>Routing decisions</h2><ul>{decisions or '<li>none yet</li>'}</ul>"
        '<p><a href="/">Back</a></p>'
    )
    return _plain_page("Call", body, 200)


def _call_row(record: Any) -> dict[str, Any]:
    context = record.context or {}
    caller = context.get("caller") or {}
    intent = context.get("intent") or {}
    return {
        "call_id": record.call_id,
        "status": record.status.value,
        "queue": record.queue,
        "agent_id": record.agent_id,
        "received_at": record.received_at.isoformat(),
        "answered_at": record.answered_at.isoformat() if record.answered_at else None,
        "caller": {"number": caller.get("number"), "name": caller.get("name")},
        "campaign": record.campaign,
        "intent": {"name": intent.get("name"), "confidence": intent.get("confidence")},
    }


def mount_assets(app: FastAPI) -> None:
    """Serve the pages' own files (and the vendored library) under /assets."""
    from fastapi.staticfiles import StaticFiles

    for name in ASSET_DIRS:
        folder = STATIC / name
        if folder.is_dir():  # vendor/ is missing until `make install` has run npm
            app.mount(f"/assets/{name}", StaticFiles(directory=folder), name=f"assets-{name}")


def build_pages_router() -> APIRouter:
    api = APIRouter()
    gate = SignInGate()

    @api.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        caller = await _caller(request)
        if caller is None or caller.session is None:
            return RedirectResponse("/signin", status_code=303)
        return RedirectResponse(HOME[caller.session.role], status_code=303)

    @api.get("/signin", include_in_schema=False)
    async def signin_form(request: Request, next: str | None = None) -> Response:
        return signin_page(None, safe_next(next, ""))

    @api.post("/signin", include_in_schema=False)
    async def signin(
        request: Request,
        username: Annotated[str, Form(max_length=256)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        next: Annotated[str, Form(max_length=2048)] = "",
    ) -> Response:
        node = _node(request)
        if request.headers.get("origin") and not same_origin(request, node.settings.public_url):
            raise HTTPException(403, "cross-origin sign-in refused")
        if node.access is None:
            raise HTTPException(503, "sign-in is not available on this node")
        client = _client(request)
        user = None
        if username and password:
            user = await gate.attempt(node.access.users, username, password, client)
        if user is None:
            await audit(
                node,
                "anonymous",
                "signin.failed",
                outcome="denied",
                detail={"username": username.strip().lower()[:64], "client": client},
            )
            return signin_page(SIGNIN_REFUSED, safe_next(next, ""), username[:64], status=401)
        session = session_for(user)
        await audit(node, f"{user.role}:{user.username}", "signin", detail={"client": client})
        cookie = issue_session(node.settings.token_secret(), session, node.clock.now())
        target = safe_next(next, HOME[user.role])
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=SESSION_TTL_S,
            httponly=True,
            samesite="strict",
            secure=node.settings.public_url.startswith("https://"),
            path="/",
        )
        return response

    @api.post("/signout", include_in_schema=False)
    async def signout(request: Request) -> Response:
        node = _node(request)
        caller = await _caller(request)
        if caller is not None and caller.session is not None:
            await audit(node, caller.actor, "signout")
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def _page_for(request: Request, roles: tuple[str, ...], page: str) -> Response:
        caller = await _caller(request)
        if caller is None or caller.session is None:
            return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
        if caller.session.role not in roles:
            return _forbidden(f"This page is for {' and '.join(roles)} accounts.")
        if page == "agent" and caller.session.agent_id not in _node(request).agents:
            return _forbidden("Your account is not linked to a configured agent.")
        return _page(page)

    @api.get("/agent", include_in_schema=False)
    async def agent_page(request: Request) -> Response:
        return await _page_for(request, ("agent",), "agent")

    @api.get("/supervisor", include_in_schema=False)
    async def supervisor_page(request: Request) -> Response:
        return await _page_for(request, ("supervisor", "admin"), "supervisor")

    @api.get("/calls/{call_id}", include_in_schema=False)
    async def call_page(request: Request, call_id: str) -> Response:
        caller = await _caller(request)
        if caller is None:
            return RedirectResponse(f"/signin?next={quote(request.url.path)}", status_code=303)
        try:
            record, live = await fetch_call(_node(request), call_id, caller)
        except HTTPException as exc:
            if exc.status_code == 403:
                return _forbidden("This call was not offered to you.")
            if exc.status_code == 404:
                return _plain_page("No such call", "<h1>No such call</h1>", 404)
            raise
        data = record.model_dump(mode="json") if record is not None else {}
        if live is not None:
            data = live.model_dump(mode="json")
        return _call_page(data)

    # -- data for the pages ------------------------------------------------------------------
    @api.get("/v1/me")
    async def me(by: By) -> dict[str, Any]:
        session = by.session
        return {
            "role": by.principal.role,
            "subject": by.principal.subject,
            "username": session.username if session else None,
            "name": session.name if session else None,
            "agent_id": session.agent_id if session else None,
            "via": by.via,
        }

    @api.get("/v1/desktop")
    async def desktop(request: Request, by: By) -> dict[str, Any]:
        """What the agent desktop needs at load: who, their state, the disposition labels."""
        if by.principal.role != "agent":
            raise HTTPException(403, "agent role required")
        node = _node(request)
        agent = node.agents.get(by.principal.subject)
        if agent is None:
            raise HTTPException(403, "not a configured agent")
        state = None
        try:
            state = await node.state.get_agent(agent.id)
        except StateUnavailable:
            state = None
        attribution = node.settings.deployment.attribution
        return {
            "agent": {"id": agent.id, "name": agent.name, "skills": agent.skills},
            "presence": state.presence.value if state else "offline",
            "presence_since": state.presence_since.isoformat()
            if state and state.presence_since
            else None,
            "outcomes": list(attribution.labels),
            "currency": attribution.currency,
            "heartbeat_s": node.hub.heartbeat_s,
        }

    async def _queues(node: Node) -> list[dict[str, Any]]:
        now = node.clock.now()
        out = []
        for queue in node.settings.deployment.queues:
            stats = await node.state.queue_stats(queue.name, now)
            out.append(
                {
                    "name": queue.name,
                    "service_level_s": queue.service_level_s,
                    **stats.model_dump(mode="json"),
                }
            )
        return out

    @api.get("/v1/queues")
    async def queue_figures(request: Request, by: By) -> list[dict[str, Any]]:
        """Waiting, longest wait and free agents per configured queue (live state)."""
        if by.principal.role not in ("supervisor", "admin"):
            raise HTTPException(403, "supervisor role required")
        try:
            return await _queues(_node(request))
        except StateUnavailable as exc:
            raise HTTPException(503, "live state unavailable") from exc

    @api.get("/v1/monitor")
    async def monitor(request: Request, by: By) -> dict[str, Any]:
        """The supervisor's starting picture: live calls, agents, queues. The socket updates it."""
        if by.principal.role not in ("supervisor", "admin"):
            raise HTTPException(403, "supervisor role required")
        node = _node(request)
        now = node.clock.now()
        records = await node.records.list_calls(limit=MONITOR_CALLS)
        live = [r for r in records if r.status not in (CallStatus.ENDED, CallStatus.FALLBACK)]
        agents: list[dict[str, Any]] = []
        try:
            for snap in await node.agents.snapshots():
                agents.append(
                    {
                        "id": snap.agent.id,
                        "name": snap.agent.name,
                        "presence": snap.state.presence.value,
                        "presence_since": snap.state.presence_since.isoformat()
                        if snap.state.presence_since
                        else None,
                        "load": snap.state.load,
                        "capacity": snap.agent.capacity,
                        "calls_today": snap.state.calls_today,
                    }
                )
            queues = await _queues(node)
        except StateUnavailable as exc:
            raise HTTPException(503, "live state unavailable") from exc
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        levels = service_levels(
            await node.records.list_calls(limit=MONITOR_TODAY, since=today),
            {q["name"]: q["service_level_s"] for q in queues},
        )
        for q in queues:
            q["answered"], q["in_sl"] = levels.get(q["name"], (0, 0))
        await audit(node, by.actor, "monitor.read", detail={"calls": len(live)})
        return {
            "now": now.isoformat(),
            "calls": [_call_row(r) for r in live],
            "agents": agents,
            "queues": queues,
            "heartbeat_s": node.hub.heartbeat_s,
        }

    # -- administration ----------------------------------------------------------------------
    def _admin(by: Caller) -> None:
        if by.principal.role != "admin":
            raise HTTPException(403, "admin role required")

    @api.get("/v1/users")
    async def list_users(request: Request, by: By) -> list[dict[str, Any]]:
        _admin(by)
        node = _node(request)
        if node.access is None:
            raise HTTPException(503, "users are not available on this node")
        return [u.model_dump(mode="json") for u in await node.access.users.all()]

    @api.post("/v1/users", status_code=201)
    async def add_user(request: Request, by: By) -> dict[str, Any]:
        _admin(by)
        node = _node(request)
        if node.access is None:
            raise HTTPException(503, "users are not available on this node")
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError
            user = await node.access.users.add(
                str(body.get("username", "")),
                str(body.get("role", "")),
                str(body.get("password", "")),
                node.clock.now(),
                agent_id=body.get("agent_id"),
                display_name=body.get("name"),
            )
        except (ValueError, UserError) as exc:
            message = str(exc) if isinstance(exc, UserError) else "expected a JSON object"
            raise HTTPException(422, message) from None
        await audit(node, by.actor, "user.added", target=user.username, detail={"role": user.role})
        return user.model_dump(mode="json")

    @api.get("/v1/audit")
    async def audit_entries(request: Request, by: By, limit: int = 100) -> JSONResponse:
        _admin(by)
        node = _node(request)
        if node.access is None:
            raise HTTPException(503, "the audit log is not available on this node")
        entries = await node.access.audit.recent(max(1, min(limit, 1000)))
        report = await node.access.audit.verify()
        return JSONResponse(
            {
                "entries": [e.model_dump(mode="json") for e in entries],
                "chain": {"ok": report.ok, "checked": report.checked, "bad_seq": report.bad_seq},
            }
        )

    return api
