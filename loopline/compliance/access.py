"""The users, API keys and audit log of one node, on their own engine to the records database.

They share the records' database and migrations (`start` brings the schema to head, which is
a no-op when the records did it first) but not its engine: the records room stays unaware of
who reads it.
"""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from loopline.compliance.audit import AuditLog
from loopline.compliance.passwords import Passwords
from loopline.compliance.users import UserStore
from loopline.records.engine import create_records_engine
from loopline.records.migrate import migrate_engine


class AccessRecords:
    def __init__(self, url: str | URL, passwords: Passwords | None = None) -> None:
        self._url = url
        self._passwords = passwords or Passwords()
        self._engine: AsyncEngine | None = None
        self._users: UserStore | None = None
        self._audit: AuditLog | None = None

    async def start(self) -> None:
        if self._engine is not None:
            return
        engine = await create_records_engine(self._url)
        try:
            await migrate_engine(engine)
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._users = UserStore(engine, self._passwords)
        self._audit = AuditLog(engine)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        self._users = self._audit = None
        if engine is not None:
            await engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        """The records database, for the other governance stores (subjects, retention)."""
        if self._engine is None:
            raise RuntimeError("access records not started")
        return self._engine

    @property
    def users(self) -> UserStore:
        if self._users is None:
            raise RuntimeError("access records not started")
        return self._users

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            raise RuntimeError("access records not started")
        return self._audit
