"""Bearer tokens for the API and the sockets (HS256 JWTs signed with the token secret)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import jwt
from pydantic import BaseModel

Role = Literal["agent", "supervisor", "admin"]
ISSUER = "loopline"


class Principal(BaseModel):
    role: Role
    subject: str  # the agent id, or the supervisor's / admin's name


class TokenError(ValueError):
    pass


def issue_token(secret: str, principal: Principal, now: datetime, ttl_s: int = 12 * 3600) -> str:
    claims = {
        "iss": ISSUER,
        "sub": principal.subject,
        "role": principal.role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc.__class__.__name__}") from None
    role = claims.get("role")
    if role not in ("agent", "supervisor", "admin"):
        raise TokenError("invalid token: unknown role")
    return Principal(role=role, subject=str(claims["sub"]))


def bearer_from(authorization: str | None, query_token: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return query_token or None
