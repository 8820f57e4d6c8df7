"""Security of the doors: every HTTP route of the app, for each role (anonymous, agent,
supervisor, admin), answers as the table says; every webhook wants Twilio's signature; every
socket wants its token (or signature) and role.

The table must name every route: a route added without an entry fails the test, so nobody adds
a door without deciding who may open it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from starlette.routing import BaseRoute, Mount

from loopline.web.session_auth import COOKIE, Session, issue_session
from tests.e2e.conftest import TOKEN_SECRET, Running

pytestmark = pytest.mark.e2e

# Who may use each route. public: anyone (by design: health, the site's script and touches,
# sign-in, API docs, Prometheus counts); any: any signed-in role; agent / supervisor / admin:
# that role (supervisor routes admit admins); page-*: a page (redirects the anonymous to sign
# in); webhook: Twilio's signature, whoever asks; credentials: the sign-in form (refuses an
# empty one); signout: back to the sign-in page, whoever asks.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/metrics"): "public",
    ("GET", "/dni.js"): "public",
    ("GET", "/demo/site/{page}"): "public",
    ("GET", "/demo/site"): "public",
    ("OPTIONS", "/v1/touches"): "public",
    ("POST", "/v1/touches"): "public",
    ("GET", "/dashboard/{asset}"): "public",
    ("GET", "/signin"): "public",
    ("POST", "/signin"): "credentials",
    ("POST", "/signout"): "signout",
    ("GET", "/"): "page-any",
    ("POST", "/twilio/voice"): "webhook",
    ("POST", "/twilio/connect"): "webhook",
    ("POST", "/twilio/dial-status"): "webhook",
    ("POST", "/twilio/status"): "webhook",
    ("POST", "/twilio/queue-exit"): "webhook",
    ("POST", "/twilio/wait"): "webhook",
    ("GET", "/agent"): "page-agent",
    ("GET", "/supervisor"): "page-supervisor",
    ("GET", "/dashboard"): "page-supervisor",
    ("GET", "/calls/{call_id}"): "page-any",
    ("GET", "/v1/me"): "any",
    ("GET", "/v1/calls/{call_id}"): "any",
    ("POST", "/v1/calls/{call_id}/disposition"): "any",
    ("GET", "/v1/calls/{call_id}/outcome"): "any",
    ("GET", "/v1/outcomes/labels"): "any",
    ("GET", "/v1/desktop"): "agent",
    ("GET", "/v1/agents"): "supervisor",
    ("GET", "/v1/queues"): "supervisor",
    ("GET", "/v1/monitor"): "supervisor",
    ("GET", "/v1/pools"): "supervisor",
    ("POST", "/v1/spend"): "supervisor",
    ("GET", "/v1/kpis"): "supervisor",
    ("GET", "/v1/outbox"): "supervisor",
    ("POST", "/v1/outbox/replay"): "supervisor",
    ("GET", "/v1/exports/{destination}.csv"): "supervisor",
    ("GET", "/v1/users"): "admin",
    ("POST", "/v1/users"): "admin",
    ("GET", "/v1/audit"): "admin",
    ("GET", "/v1/subjects/export"): "admin",
    ("DELETE", "/v1/subjects"): "admin",
    ("GET", "/v1/admt/assessment"): "admin",
    ("POST", "/v1/retention/run"): "admin",
}
SOCKETS = {"/ws/agent": "agent", "/ws/supervisor": "supervisor", "/twilio/media": "webhook"}
ROLES = ("anonymous", "agent", "supervisor", "admin")
PARAMS = {"call_id": "CLnosuchcall", "destination": "google-ads", "asset": "app.js"}
PARAMS |= {"page": "landing"}
SESSIONS = {
    "agent": Session(username="ana", role="agent", agent_id="ana"),
    "supervisor": Session(username="sam", role="supervisor"),
    "admin": Session(username="admin", role="admin"),
}


def expected(level: str, role: str) -> str:
    """allowed | 401 | 403 | signin (a page's redirect to sign in)."""
    if level == "public":
        return "allowed"
    if level == "webhook":
        return "403"
    if level == "credentials":
        return "401"
    if level == "signout":
        return "signin"
    page = level.startswith("page-")
    need = level.removeprefix("page-")
    if role == "anonymous":
        return "signin" if page else "401"
    allowed = {
        "any": ROLES[1:],
        "agent": ("agent",),
        "supervisor": ("supervisor", "admin"),
        "admin": ("admin",),
    }[need]
    return "allowed" if role in allowed else "403"


def _walk(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's lazily included router
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def app_routes(app: Any) -> tuple[set[tuple[str, str]], set[str]]:
    http: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    for route in _walk(app.routes):
        if isinstance(route, Mount):
            continue  # static assets
        methods = getattr(route, "methods", None)
        path = getattr(route, "path", "")
        if methods:
            http |= {(m, path) for m in methods if m != "HEAD"}
        else:
            sockets.add(path)
    return http, sockets


def _seeded(data: dict[str, Any]) -> None:
    data["users"] = [
        {"username": "ana", "role": "agent", "agent_id": "ana"},
        {"username": "sam", "role": "supervisor"},
        {"username": "admin", "role": "admin"},
    ]


async def _ask(node: Running, method: str, path: str, role: str) -> httpx.Response:
    headers = {"Origin": node.base}
    cookies = {}
    if role != "anonymous":
        cookies[COOKIE] = issue_session(TOKEN_SECRET, SESSIONS[role], node.node.clock.now())
    url = node.base + path.format(**PARAMS)
    if path.startswith("/twilio/"):
        url += "?call_id=CLnosuchcall"  # the webhooks' own query, so only the signature fails
    body = None if method in ("GET", "OPTIONS") else b"{}"
    if method != "GET" and method != "OPTIONS":
        headers["content-type"] = "application/json"
    async with httpx.AsyncClient(cookies=cookies, timeout=10) as client:
        return await client.request(method, url, content=body, headers=headers)


def _outcome(resp: httpx.Response) -> str:
    if resp.status_code in (401, 403):
        return str(resp.status_code)
    if resp.status_code == 303 and resp.headers.get("location", "").startswith("/signin"):
        return "signin"
    assert resp.status_code < 500, resp.text
    return "allowed"


async def test_every_route_answers_each_role_as_the_table_says(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(_seeded, env={"LOOPLINE_DEMO_PASSWORD": "doors-e2e-pass"}) as node:
        http, sockets = app_routes(node.app)
        assert http == set(ROUTES), "routes without a table entry (or entries without a route)"
        assert sockets == set(SOCKETS)
        wrong = []
        for (method, path), level in sorted(ROUTES.items()):
            for role in ROLES:
                got = _outcome(await _ask(node, method, path, role))
                want = expected(level, role)
                if got != want:
                    wrong.append(f"{method} {path} as {role}: {got}, expected {want}")
        assert wrong == [], "\n".join(wrong)
        assert node.node.access is not None
        denied = [e for e in await node.node.access.audit.recent(500) if e.outcome == "denied"]
        assert {e.action for e in denied} >= {"subject.export", "subject.erase"}


async def test_every_socket_wants_its_token_and_role(start_node) -> None:  # type: ignore[no-untyped-def]
    from tests.e2e.conftest import token_for

    async with start_node() as node:
        ws_base = node.base.replace("http", "ws", 1)
        for path, level in SOCKETS.items():
            for role in ROLES:
                headers = {}
                if role != "anonymous":
                    subject = "ana" if role == "agent" else "someone"
                    headers["Authorization"] = f"Bearer {token_for(role, subject)}"
                refused = await _socket_refused(ws_base + path, headers)
                allowed = level != "webhook" and (
                    role == level or (level == "supervisor" and role == "admin")
                )
                assert refused is not allowed, (path, role)


async def _socket_refused(url: str, headers: dict[str, str]) -> bool:
    """True when the server refuses the socket (an HTTP error or a close before any hello)."""
    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=5) as ws:
            try:
                first = json.loads(await ws.recv())
            except websockets.ConnectionClosed:
                return True
            return first.get("type") != "hello"
    except websockets.InvalidStatus:
        return True
