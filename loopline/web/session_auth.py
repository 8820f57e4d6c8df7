"""Who is asking: session cookies for the pages, bearer tokens and API keys for the rest.

- A **session cookie** (`loopline_session`) is an HS256 JWT with its own audience, signed with a
  key derived from the token secret, so a bearer token is never accepted as a cookie or the
  other way round. HttpOnly, SameSite=Strict, Secure when the public URL is https. A request
  that changes something with only a cookie must also come from our own origin.
- A **bearer token** (`loopline token`) is checked as before (`web.auth`).
- An **API key** (`llk_...`, `loopline users api-key`) goes where a bearer token goes.

Failed sign-ins meet a delay that doubles with each failure for that username and for that
client address (`SignInThrottle`), and every answer is the same plain sentence.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import jwt
from fastapi import HTTPException
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection

from loopline.compliance.access import AccessRecords
from loopline.compliance.users import User, UserStore, is_api_key
from loopline.domain.clock import Clock
from loopline.web.auth import ISSUER, Principal, TokenError, bearer_from, verify_token

COOKIE = "loopline_session"
SESSION_AUDIENCE = "loopline-session"
SESSION_TTL_S = 12 * 3600
SIGNIN_REFUSED = "Those details did not match an account. Check them and try again."
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Via = Literal["bearer", "api-key", "cookie"]
log = logging.getLogger(__name__)


def session_key(token_secret: str) -> bytes:
    """The cookie signing key: derived, so one secret signs two kinds of token apart."""
    return hmac.new(token_secret.encode(), b"loopline session cookie v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class Session:
    username: str
    role: Literal["agent", "supervisor", "admin"]
    agent_id: str | None = None
    name: str | None = None

    @property
    def principal(self) -> Principal:
        # An agent is known everywhere by their agent id: the API's call checks compare it.
        subject = self.agent_id if self.role == "agent" and self.agent_id else self.username
        return Principal(role=self.role, subject=subject)


def session_for(user: User) -> Session:
    return Session(
        username=user.username, role=user.role, agent_id=user.agent_id, name=user.display_name
    )


def issue_session(secret: str, session: Session, now: datetime, ttl_s: int = SESSION_TTL_S) -> str:
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": SESSION_AUDIENCE,
        "sub": session.username,
        "role": session.role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    if session.agent_id:
        claims["agent"] = session.agent_id
    if session.name:
        claims["name"] = session.name
    return jwt.encode(claims, session_key(secret), algorithm="HS256")


def read_session(secret: str, cookie: str) -> Session:
    try:
        claims = jwt.decode(
            cookie,
            session_key(secret),
            algorithms=["HS256"],
            issuer=ISSUER,
            audience=SESSION_AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid session: {exc.__class__.__name__}") from None
    role = claims.get("role")
    if role not in ("agent", "supervisor", "admin"):
        raise TokenError("invalid session: unknown role")
    agent = claims.get("agent")
    name = claims.get("name")
    return Session(
        username=str(claims["sub"]),
        role=role,
        agent_id=str(agent) if agent else None,
        name=str(name) if name else None,
    )


# -- the sign-in throttle (pure: time comes in as seconds) ---------------------------------------


def failure_delay(failures: int, base_s: float, max_s: float) -> float:
    """The wait before the next attempt after `failures` failures in a row: 0, base, 2·base, …"""
    if failures <= 0:
        return 0.0
    return float(min(max_s, base_s * 2 ** min(failures - 1, 30)))


@dataclass
class _Record:
    failures: int = 0
    not_before: float = 0.0
    last: float = 0.0


@dataclass
class SignInThrottle:
    """Failures per key ("user:ana", "ip:10.0.0.7"), forgotten after `forget_s` without one.

    At most `max_keys` keys are kept (the least recently failed go first), so a flood of
    made-up usernames cannot grow it without bound.
    """

    base_s: float = 0.5
    max_s: float = 30.0
    forget_s: float = 900.0
    max_keys: int = 10_000
    _records: OrderedDict[str, _Record] = field(default_factory=OrderedDict)

    def wait_s(self, keys: list[str], now: float) -> float:
        """How long an attempt for these keys must wait before it is checked."""
        wait = 0.0
        for key in keys:
            record = self._records.get(key)
            if record is None:
                continue
            if now - record.last > self.forget_s:
                del self._records[key]
                continue
            wait = max(wait, record.not_before - now)
        return wait

    def failed(self, keys: list[str], now: float) -> float:
        """Count a failure for each key; returns the delay now due before the next attempt."""
        due = 0.0
        for key in keys:
            record = self._records.pop(key, None) or _Record()
            if now - record.last > self.forget_s:
                record.failures = 0
            record.failures += 1
            record.last = now
            delay = failure_delay(record.failures, self.base_s, self.max_s)
            record.not_before = now + delay
            self._records[key] = record
            due = max(due, delay)
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)
        return due

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._records.pop(key, None)

    def failures(self, key: str) -> int:
        record = self._records.get(key)
        return 0 if record is None else record.failures


class SignInGate:
    """Runs sign-in attempts for one username one at a time, each after its due delay.

    Serialising per username means parallel guesses queue behind each other's delays rather
    than all being checked at once; the lock is dropped when nobody waits on it.
    """

    def __init__(self, throttle: SignInThrottle | None = None) -> None:
        self.throttle = throttle or SignInThrottle()
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    async def attempt(
        self, users: UserStore, username: str, password: str, client: str
    ) -> User | None:
        keys = [f"user:{username.strip().lower()[:128]}", f"ip:{client}"]
        lock_key = keys[0]
        lock = self._locks.setdefault(lock_key, asyncio.Lock())
        self._waiting[lock_key] = self._waiting.get(lock_key, 0) + 1
        try:
            async with lock:
                loop = asyncio.get_running_loop()
                wait = self.throttle.wait_s(keys, loop.time())
                if wait > 0:
                    await asyncio.sleep(wait)
                user = await users.authenticate(username, password)
                if user is None:
                    self.throttle.failed(keys, loop.time())
                else:
                    self.throttle.succeeded(keys)
                return user
        finally:
            self._waiting[lock_key] -= 1
            if not self._waiting[lock_key]:
                del self._waiting[lock_key]
                self._locks.pop(lock_key, None)


# -- resolving a request's principal --------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    principal: Principal
    via: Via
    session: Session | None = None

    @property
    def actor(self) -> str:
        if self.session is not None:
            return f"{self.session.role}:{self.session.username}"
        return f"{self.principal.role}:{self.principal.subject}"


class AuthFailed(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(conn: HTTPConnection, public_url: str) -> bool:
    """The request's Origin (or Referer) is the node's public URL or the host it was sent to."""
    origin = conn.headers.get("origin") or conn.headers.get("referer")
    if not origin:
        return False
    seen = origin_of(origin)
    host = conn.headers.get("host", "")
    allowed = {origin_of(public_url), f"http://{host}".lower(), f"https://{host}".lower()}
    return seen in allowed


async def resolve_caller(
    conn: HTTPConnection,
    *,
    token_secret: str,
    users: UserStore | None,
    public_url: str,
    method: str = "GET",
) -> Caller | None:
    """The caller of a request or websocket; None when it carries no credentials at all.

    Raises `AuthFailed` (401 or 403) for credentials that are present but not good.
    """
    token = bearer_from(conn.headers.get("authorization"), conn.query_params.get("token"))
    if token is not None:
        if is_api_key(token):
            key = None if users is None else await users.verify_api_key(token)
            if key is None:
                raise AuthFailed(401, "invalid API key")
            return Caller(Principal(role=key.role, subject=key.subject), "api-key")
        try:
            return Caller(verify_token(token_secret, token), "bearer")
        except TokenError as exc:
            raise AuthFailed(401, str(exc)) from None
    cookie = conn.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        session = read_session(token_secret, cookie)
    except TokenError as exc:
        raise AuthFailed(401, str(exc)) from None
    if users is not None:
        user = await users.get(session.username)
        if user is None or user.disabled or user.role != session.role:
            raise AuthFailed(401, "session no longer valid: sign in again")
    # A cookie rides along on any request the browser sends; one that changes something
    # (or opens a socket) must come from our own pages.
    if method.upper() not in SAFE_METHODS and not same_origin(conn, public_url):
        raise AuthFailed(403, "cross-origin request refused")
    return Caller(session.principal, "cookie", session)


async def audit(
    node: _HasAccess,
    actor: str,
    action: str,
    *,
    target: str | None = None,
    outcome: str = "ok",
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append to the audit log; an entry that cannot be written refuses the request (503)."""
    if node.access is None:
        return
    try:
        await node.access.audit.append(
            actor, action, node.clock.now(), target=target, outcome=outcome, detail=detail
        )
    except (SQLAlchemyError, OSError) as exc:
        log.error("audit log unavailable", extra={"action": action})
        raise HTTPException(503, "audit log unavailable; try again") from exc


class _HasAccess(Protocol):
    @property
    def access(self) -> AccessRecords | None: ...
    @property
    def clock(self) -> Clock: ...
