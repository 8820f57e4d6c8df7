"""Governance: erasure tombstones, audit pruning anchors (the audit log's delete trigger now
lets retention remove entries at or below an anchor, and nothing else), and an index on the
caller's number for data-subject requests.

Revision ID: 0007_governance
Revises: 0004_utterances
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_governance"
down_revision: str | None = "0004_utterances"
branch_labels: str | None = None
depends_on: str | None = None

_REFUSE = "the audit log is append-only"


def upgrade() -> None:
    op.create_table(
        "tombstones",
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_table(
        "audit_anchor",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_calls_caller_number", "calls", ["caller_number"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION loopline_audit_refuse() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'DELETE' AND EXISTS "
            "(SELECT 1 FROM audit_anchor WHERE audit_anchor.seq >= OLD.seq) THEN RETURN OLD; "
            f"END IF; RAISE EXCEPTION '{_REFUSE}'; END $$"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "WHEN NOT EXISTS (SELECT 1 FROM audit_anchor WHERE audit_anchor.seq >= OLD.seq) "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION loopline_audit_refuse() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$"
        )
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END"
        )
    op.drop_index("ix_calls_caller_number", table_name="calls")
    op.drop_table("audit_anchor")
    op.drop_table("tombstones")
