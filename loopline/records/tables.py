"""The SQL tables (SQLAlchemy 2 declarative). `migrations/versions/` must create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL keeps the zone (`timestamptz`); SQLite keeps text without one, so values are
    stored as UTC and read back as UTC, which also keeps SQLite's text order the time order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


class CallRow(Base):
    __tablename__ = "calls"

    call_id: Mapped[str] = mapped_column(String, primary_key=True)
    provider_call_id: Mapped[str | None] = mapped_column(String)
    caller_number: Mapped[str | None] = mapped_column(String, index=True)
    dialed: Mapped[str | None] = mapped_column(String)
    campaign: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String)
    status_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    queue: Mapped[str | None] = mapped_column(String)
    policy: Mapped[str | None] = mapped_column(String)
    agent_id: Mapped[str | None] = mapped_column(String, index=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    end_reason: Mapped[str | None] = mapped_column(String)
    context: Mapped[dict[str, Any]] = mapped_column(json_type())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(
        String, ForeignKey("calls.call_id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String)
    outcome: Mapped[str] = mapped_column(String)
    policy: Mapped[str] = mapped_column(String)
    expression: Mapped[str | None] = mapped_column(Text)
    queue: Mapped[str] = mapped_column(String)
    priority: Mapped[int] = mapped_column(Integer)
    strategy: Mapped[str] = mapped_column(String)
    step: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str | None] = mapped_column(String)
    required_skills: Mapped[dict[str, Any]] = mapped_column(json_type())
    candidates: Mapped[list[Any]] = mapped_column(json_type())
    rejected: Mapped[dict[str, Any]] = mapped_column(json_type())
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OfferRow(Base):
    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(
        String, ForeignKey("calls.call_id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(String, index=True)
    offered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(String)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class EventRow(Base):
    """Every bus event applied, once: the bus delivers at least once, so ids are remembered."""

    __tablename__ = "call_events"
    __table_args__ = (Index("uq_call_events_source_event", "source", "event_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String)
    event_id: Mapped[str] = mapped_column(String)
    type: Mapped[str] = mapped_column(String)
    call_id: Mapped[str | None] = mapped_column(String, index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(json_type())
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime)


class UserRow(Base):
    """A person who signs in to the pages; an agent's `agent_id` names a configured agent."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String, unique=True)
    role: Mapped[str] = mapped_column(String)
    agent_id: Mapped[str | None] = mapped_column(String)
    display_name: Mapped[str | None] = mapped_column(String)
    password_hash: Mapped[str] = mapped_column(String)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKeyRow(Base):
    """A key a server presents; only a hash of its secret part is kept."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    subject: Mapped[str] = mapped_column(String)
    secret_hash: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditRow(Base):
    """One audit entry. Append-only (database triggers refuse UPDATE and DELETE) and chained:
    `hash` covers the entry's fields and `prev_hash`, the hash of the entry before it."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String, index=True)
    target: Mapped[str | None] = mapped_column(String)
    outcome: Mapped[str] = mapped_column(String)
    detail: Mapped[dict[str, Any]] = mapped_column(json_type())
    prev_hash: Mapped[str] = mapped_column(String)
    hash: Mapped[str] = mapped_column(String)
