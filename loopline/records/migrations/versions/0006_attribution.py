"""Attribution: outcomes, QA scores, conversions and their outbox, ad spend, call facts and
their daily KPI sums.

Revision ID: 0006_attribution
Revises: 0002_users_audit
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_attribution"
down_revision: str | None = "0002_users_audit"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("evidence", _json(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("currency", sa.String(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.String(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
        _at("at", nullable=False),
        sa.PrimaryKeyConstraint("call_id"),
    )
    op.create_table(
        "qa_scores",
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("max_points", sa.Float(), nullable=False),
        sa.Column("items", _json(), nullable=False),
        _at("at", nullable=False),
        sa.PrimaryKeyConstraint("call_id"),
    )
    op.create_table(
        "conversions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        _at("occurred_at", nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        _at("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_conversions_call_id", "conversions", ["call_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversion_id", sa.String(), nullable=False),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("next_attempt_at", nullable=False),
        _at("leased_until"),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("solo", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("delivered_at"),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        sa.ForeignKeyConstraint(["conversion_id"], ["conversions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_outbox_conversion_destination",
        "outbox",
        ["conversion_id", "destination"],
        unique=True,
    )
    op.create_index("ix_outbox_due", "outbox", ["destination", "status", "next_attempt_at"])
    op.create_table(
        "ad_spend",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Float(), nullable=False),
        sa.Column("conversion_value", sa.Float(), nullable=False),
        _at("imported_at", nullable=False),
        sa.PrimaryKeyConstraint("day", "source", "campaign"),
    )
    op.create_table(
        "call_facts",
        sa.Column("call_id", sa.String(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        _at("received_at", nullable=False),
        sa.Column("campaign", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("keyword", sa.String(), nullable=True),
        sa.Column("agent_id", sa.String(), nullable=True),
        sa.Column("intent", sa.String(), nullable=True),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("speed_to_answer_s", sa.Float(), nullable=True),
        sa.Column("handle_s", sa.Float(), nullable=True),
        sa.Column("transferred", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.Column("qa_score", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("call_id"),
    )
    op.create_index("ix_call_facts_day", "call_facts", ["day"])
    op.create_index("ix_call_facts_day_campaign", "call_facts", ["day", "campaign"])
    op.create_table(
        "kpi_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dim", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        *[
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "calls",
                "answered",
                "speed_n",
                "handle_n",
                "transferred",
                "converted_calls",
                "answered_converted",
                "conversions",
                "qa_scored",
            )
        ],
        *[
            sa.Column(name, sa.Float(), nullable=False)
            for name in ("speed_sum_s", "handle_sum_s", "revenue", "qa_sum")
        ],
        sa.PrimaryKeyConstraint("day", "dim", "key"),
    )


def downgrade() -> None:
    op.drop_table("kpi_daily")
    op.drop_table("call_facts")
    op.drop_table("ad_spend")
    op.drop_table("outbox")
    op.drop_table("conversions")
    op.drop_table("qa_scores")
    op.drop_table("outcomes")
