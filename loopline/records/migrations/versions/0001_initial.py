"""The first records schema: calls, their decision and offer trails, applied bus events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("provider_call_id", sa.String(), nullable=True),
        sa.Column("caller_number", sa.String(), nullable=True),
        sa.Column("dialed", sa.String(), nullable=True),
        sa.Column("campaign", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        _at("status_at"),
        sa.Column("queue", sa.String(), nullable=True),
        sa.Column("policy", sa.String(), nullable=True),
        sa.Column("agent_id", sa.String(), nullable=True),
        _at("received_at", nullable=False),
        _at("queued_at"),
        _at("answered_at"),
        _at("ended_at"),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("end_reason", sa.String(), nullable=True),
        sa.Column("context", _json(), nullable=False),
        _at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("call_id"),
    )
    op.create_index("ix_calls_agent_id", "calls", ["agent_id"])
    op.create_index("ix_calls_received_at", "calls", ["received_at"])

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("expression", sa.Text(), nullable=True),
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=True),
        sa.Column("required_skills", _json(), nullable=False),
        sa.Column("candidates", _json(), nullable=False),
        sa.Column("rejected", _json(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _at("decided_at", nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.call_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decisions_call_id", "decisions", ["call_id"])

    op.create_table(
        "offers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("agent_id", sa.String(), nullable=False),
        _at("offered_at"),
        _at("expires_at"),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        _at("closed_at"),
        sa.ForeignKeyConstraint(["call_id"], ["calls.call_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_offers_call_id", "offers", ["call_id"])
    op.create_index("ix_offers_agent_id", "offers", ["agent_id"])

    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("call_id", sa.String(), nullable=True),
        _at("at", nullable=False),
        sa.Column("payload", _json(), nullable=False),
        _at("applied_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_call_events_call_id", "call_events", ["call_id"])
    op.create_index(
        "uq_call_events_source_event", "call_events", ["source", "event_id"], unique=True
    )


def downgrade() -> None:
    op.drop_table("call_events")
    op.drop_table("offers")
    op.drop_table("decisions")
    op.drop_table("calls")
