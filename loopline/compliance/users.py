"""Users with roles, and API keys for servers, in the records database.

A user signs in to the pages with a username and password (argon2id, off the loop). An agent
user carries `agent_id`, the configured agent whose calls they see. An API key is
`llk_<key id>_<secret>`; only a SHA-256 of the secret is kept (the secret is 32 random bytes,
so a fast hash is enough: there is nothing to guess), and it is shown once, when made.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from loopline.compliance.passwords import Passwords, check_strength, dummy_hash
from loopline.records.engine import writer
from loopline.records.tables import ApiKeyRow, UserRow

Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "admin")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,63}$")
API_KEY = re.compile(r"^llk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
log = logging.getLogger(__name__)


class UserError(ValueError):
    """A user that cannot be made or changed as asked (the message says why)."""


class User(BaseModel):
    id: int
    username: str
    role: Role
    agent_id: str | None = None
    display_name: str | None = None
    disabled: bool = False
    created_at: datetime


class ApiKey(BaseModel):
    key_id: str
    name: str
    role: Role
    subject: str
    created_at: datetime
    revoked_at: datetime | None = None


def normalize_username(raw: str) -> str:
    return raw.strip().lower()


def check_user(username: str, role: str, agent_id: str | None) -> None:
    """Raise `UserError` for a username, role and agent id that cannot go together."""
    if not USERNAME.match(username):
        raise UserError(
            "a username is 2-64 characters: lower-case letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if role == "agent" and not agent_id:
        raise UserError("an agent user needs the id of a configured agent (agent_id)")
    if role != "agent" and agent_id:
        raise UserError("only agent users carry an agent_id")


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=row.role,  # only ROLES are ever written
        agent_id=row.agent_id,
        display_name=row.display_name,
        disabled=row.disabled,
        created_at=row.created_at,
    )


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        role=row.role,
        subject=row.subject,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class UserStore:
    def __init__(self, engine: AsyncEngine, passwords: Passwords | None = None) -> None:
        self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self.passwords = passwords or Passwords()
        self._dummy: str | None = None

    # -- users -------------------------------------------------------------------------------
    async def add(
        self,
        username: str,
        role: str,
        password: str,
        now: datetime,
        *,
        agent_id: str | None = None,
        display_name: str | None = None,
    ) -> User:
        username = normalize_username(username)
        check_user(username, role, agent_id)
        try:
            check_strength(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        hashed = await self.passwords.hash(password)
        row = UserRow(
            username=username,
            role=role,
            agent_id=agent_id,
            display_name=display_name,
            password_hash=hashed,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._writes() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise UserError(f"user {username!r} exists already") from None
        return _user(row)

    async def get(self, username: str) -> User | None:
        row = await self._row(normalize_username(username))
        return None if row is None else _user(row)

    async def _row(self, username: str) -> UserRow | None:
        async with self._reads() as session, session.begin():
            return (
                await session.execute(select(UserRow).where(UserRow.username == username))
            ).scalar_one_or_none()

    async def all(self) -> list[User]:
        async with self._reads() as session, session.begin():
            rows = (await session.execute(select(UserRow).order_by(UserRow.username))).scalars()
            return [_user(row) for row in rows]

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is theirs and they are enabled; None for any miss.

        A miss costs one argon2 verification whatever its cause, so that timing does not tell
        an unknown username from a wrong password.
        """
        row = await self._row(normalize_username(username))
        if row is None:
            if self._dummy is None:
                self._dummy = await _to_thread_dummy(self.passwords)
            await self.passwords.verify(self._dummy, password)
            return None
        if not await self.passwords.verify(row.password_hash, password) or row.disabled:
            return None
        return _user(row)

    async def set_password(self, username: str, password: str, now: datetime) -> None:
        try:
            check_strength(password)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        hashed = await self.passwords.hash(password)
        await self._update(username, now, password_hash=hashed)

    async def set_disabled(self, username: str, disabled: bool, now: datetime) -> None:
        await self._update(username, now, disabled=disabled)

    async def _update(self, username: str, now: datetime, **values: object) -> None:
        username = normalize_username(username)
        async with self._writes() as session, session.begin():
            done = await session.execute(
                update(UserRow)
                .where(UserRow.username == username)
                .values(updated_at=now, **values)
                .returning(UserRow.id)
            )
            if done.scalar_one_or_none() is None:
                raise UserError(f"no user {username!r}")

    # -- API keys ----------------------------------------------------------------------------
    async def add_api_key(self, name: str, role: str, now: datetime) -> tuple[ApiKey, str]:
        """A new key for a server; returns it with the full key text, shown only this once."""
        if role not in ROLES or role == "agent":
            raise UserError("an API key is for a server: role supervisor or admin")
        if not name.strip():
            raise UserError("an API key needs a name (the server it is for)")
        key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
        secret = secrets.token_urlsafe(32)
        row = ApiKeyRow(
            key_id=key_id,
            name=name.strip(),
            role=role,
            subject=f"key:{name.strip()}",
            secret_hash=_secret_hash(secret),
            created_at=now,
            revoked_at=None,
        )
        async with self._writes() as session, session.begin():
            session.add(row)
        return _key(row), f"llk_{key_id}_{secret}"

    async def verify_api_key(self, presented: str) -> ApiKey | None:
        match = API_KEY.match(presented)
        if match is None:
            return None
        key_id, secret = match.groups()
        async with self._reads() as session, session.begin():
            row = await session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _secret_hash(secret)):
            return None
        return _key(row)

    async def revoke_api_key(self, key_id: str, now: datetime) -> bool:
        async with self._writes() as session, session.begin():
            done = await session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(ApiKeyRow.key_id)
            )
            return done.scalar_one_or_none() is not None

    async def list_api_keys(self) -> list[ApiKey]:
        async with self._reads() as session, session.begin():
            rows = (await session.execute(select(ApiKeyRow).order_by(ApiKeyRow.name))).scalars()
            return [_key(row) for row in rows]


def is_api_key(token: str) -> bool:
    return token.startswith("llk_")


async def _to_thread_dummy(passwords: Passwords) -> str:
    return await asyncio.to_thread(dummy_hash, passwords)


class SeedSpec(Protocol):
    """A user the deployment file asks for (`users:` in config), created when missing."""

    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def agent_id(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...


async def seed_users(
    users: UserStore,
    seeds: Iterable[SeedSpec],
    password: str | None,
    now: datetime,
    known_agents: Collection[str] | None = None,
) -> list[str]:
    """Create the seeded users that do not exist yet, all with `password`; the names made.

    With no password (LOOPLINE_DEMO_PASSWORD unset) nothing is made: seeds are for demos, and
    a seeded account must never come with a password written in a file.
    """
    seeds = list(seeds)
    if not seeds:
        return []
    if password is None:
        log.info("users in the config are not seeded: LOOPLINE_DEMO_PASSWORD is not set")
        return []
    made = []
    for seed in seeds:
        unknown = known_agents is not None and seed.agent_id not in known_agents
        if seed.agent_id is not None and unknown:
            log.warning("seeded user skipped: its agent is not configured")
            continue
        if await users.get(seed.username) is not None:
            continue
        try:
            await users.add(
                seed.username,
                seed.role,
                password,
                now,
                agent_id=seed.agent_id,
                display_name=seed.name,
            )
        except UserError as exc:
            if "exists already" in str(exc):  # another node seeded it meanwhile
                continue
            raise
        made.append(seed.username)
    return made
