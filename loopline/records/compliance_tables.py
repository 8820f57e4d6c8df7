"""Governance tables: erasure tombstones and the audit log's pruning anchors.

Migration `0007_governance` creates exactly these.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from loopline.records.tables import Base, UtcDateTime


class TombstoneRow(Base):
    """An erased data subject or call: only a keyed hash of the identifier is kept, so a late
    webhook or a replayed event can be recognised and dropped without naming anyone."""

    __tablename__ = "tombstones"

    digest: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String)  # phone | email | visitor | call | provider_call
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditAnchorRow(Base):
    """Where the audit chain starts after retention pruned its oldest entries: the last pruned
    entry's seq and hash. The delete trigger only lets entries at or below an anchor go."""

    __tablename__ = "audit_anchor"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String)
    pruned_at: Mapped[datetime] = mapped_column(UtcDateTime)


def tombstone_digest(kind: str, value: str) -> str:
    """The hash a tombstone keeps for one identifier (already normalised by the caller)."""
    return hashlib.sha256(f"loopline-tombstone:v1:{kind}:{value}".encode()).hexdigest()


async def call_erased(session: AsyncSession, call_id: str) -> bool:
    """Whether the call was erased: its late events must not bring it back."""
    digest = tombstone_digest("call", call_id)
    found = await session.execute(select(TombstoneRow.digest).where(TombstoneRow.digest == digest))
    return found.first() is not None


async def erased_calls(session: AsyncSession, call_ids: set[str]) -> set[str]:
    """Which of these calls were erased (one query for a batch of events)."""
    if not call_ids:
        return set()
    by_digest = {tombstone_digest("call", c): c for c in call_ids}
    found = await session.execute(
        select(TombstoneRow.digest).where(TombstoneRow.digest.in_(list(by_digest)))
    )
    return {by_digest[d] for d in found.scalars()}
