"""The attribution tables: outcomes, QA scores, conversions, their outbox, spend, call facts.

Migration `0006_attribution` creates exactly these. `call_facts` is one narrow row per ended
call, written by the attribution pipeline, and `kpi_daily` its running sums per day and
grouping, so that KPIs over a million calls read a few thousand rows instead of JSON digging
in `calls.context`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loopline.records.tables import Base, UtcDateTime, json_type


class OutcomeRow(Base):
    __tablename__ = "outcomes"

    call_id: Mapped[str] = mapped_column(String, primary_key=True)
    label: Mapped[str] = mapped_column(String)
    confidence: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String)  # disposition | rules | classifier | default
    evidence: Mapped[list[Any]] = mapped_column(json_type())
    value: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String)
    notes: Mapped[str | None] = mapped_column(Text)
    agent_id: Mapped[str | None] = mapped_column(String)
    decided_by: Mapped[str | None] = mapped_column(String)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class QaScoreRow(Base):
    __tablename__ = "qa_scores"

    call_id: Mapped[str] = mapped_column(String, primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    points: Mapped[float] = mapped_column(Float)
    max_points: Mapped[float] = mapped_column(Float)
    items: Mapped[list[Any]] = mapped_column(json_type())
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class ConversionRow(Base):
    __tablename__ = "conversions"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    call_id: Mapped[str] = mapped_column(String, index=True)
    name: Mapped[str] = mapped_column(String)
    outcome: Mapped[str] = mapped_column(String)
    value: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # active, or superseded when the agent's disposition replaced an automatic outcome
    status: Mapped[str] = mapped_column(String)
    payload: Mapped[dict[str, Any]] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxRow(Base):
    """One conversion for one destination, until that destination has accepted it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("uq_outbox_conversion_destination", "conversion_id", "destination", unique=True),
        Index("ix_outbox_due", "destination", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversion_id: Mapped[str] = mapped_column(
        String, ForeignKey("conversions.id", ondelete="CASCADE")
    )
    destination: Mapped[str] = mapped_column(String)
    # pending | sending | delivered | dead | cancelled
    status: Mapped[str] = mapped_column(String)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String)
    solo: Mapped[bool] = mapped_column(Boolean)  # send alone: its batch was refused
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SpendRow(Base):
    __tablename__ = "ad_spend"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String, primary_key=True)
    campaign: Mapped[str] = mapped_column(String, primary_key=True)
    cost: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String)
    clicks: Mapped[int] = mapped_column(Integer)
    conversions: Mapped[float] = mapped_column(Float)  # the platform's own (digital) conversions
    conversion_value: Mapped[float] = mapped_column(Float)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CallFactRow(Base):
    __tablename__ = "call_facts"
    __table_args__ = (Index("ix_call_facts_day_campaign", "day", "campaign"),)

    call_id: Mapped[str] = mapped_column(String, primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)  # in the attribution timezone
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    campaign: Mapped[str | None] = mapped_column(String)
    source: Mapped[str | None] = mapped_column(String)
    keyword: Mapped[str | None] = mapped_column(String)
    agent_id: Mapped[str | None] = mapped_column(String)
    intent: Mapped[str | None] = mapped_column(String)
    answered: Mapped[bool] = mapped_column(Boolean)
    speed_to_answer_s: Mapped[float | None] = mapped_column(Float)
    handle_s: Mapped[float | None] = mapped_column(Float)
    transferred: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str | None] = mapped_column(String)
    conversions: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[float] = mapped_column(Float)
    qa_score: Mapped[float | None] = mapped_column(Float)


class KpiDailyRow(Base):
    """Per day, per grouping (`dim`: campaign, source, keyword, agent, intent) and key, the sums
    KPIs are made of. Kept in step with `call_facts` by adding each row's change, so a KPI
    query reads a few thousand rows instead of every call. The key "" stands for none."""

    __tablename__ = "kpi_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dim: Mapped[str] = mapped_column(String, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    speed_sum_s: Mapped[float] = mapped_column(Float)
    speed_n: Mapped[int] = mapped_column(Integer)
    handle_sum_s: Mapped[float] = mapped_column(Float)
    handle_n: Mapped[int] = mapped_column(Integer)
    transferred: Mapped[int] = mapped_column(Integer)
    converted_calls: Mapped[int] = mapped_column(Integer)
    answered_converted: Mapped[int] = mapped_column(Integer)
    conversions: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[float] = mapped_column(Float)
    qa_scored: Mapped[int] = mapped_column(Integer)
    qa_sum: Mapped[float] = mapped_column(Float)
