"""The transcript table: final utterances of calls, already redacted.

Migration `0004_utterances` creates exactly this. Only `utterance.final` events land here;
partials are live-only and never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from loopline.records.tables import Base, UtcDateTime, json_type


class UtteranceRow(Base):
    __tablename__ = "utterances"
    __table_args__ = (Index("ix_utterances_call_start", "call_id", "start_ms"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String, ForeignKey("calls.call_id", ondelete="CASCADE"))
    track: Mapped[str] = mapped_column(String)
    speaker: Mapped[str] = mapped_column(String)
    text: Mapped[str] = mapped_column(Text)
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    redactions: Mapped[list[Any]] = mapped_column(json_type())
    sentiment: Mapped[dict[str, Any] | None] = mapped_column(json_type(), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
