"""Durable records: calls, their decision and offer trails (SQLite embedded, PostgreSQL at scale).

The records writer subscribes to the bus and hands each event to `Records.apply`.
"""

# The attribution tables join `Base.metadata` whenever the records are imported.
from loopline.records import attribution_tables as _attribution_tables  # noqa: F401
from loopline.records import compliance_tables as _compliance_tables  # noqa: F401
from loopline.records import transcript_tables as _transcript_tables  # noqa: F401
from loopline.records.base import Records, RecordsUnavailable
from loopline.records.migrate import migrate
from loopline.records.models import CallRecord, DecisionRecord, OfferOutcome, OfferRecord
from loopline.records.sql import SqlRecords

__all__ = [
    "CallRecord",
    "DecisionRecord",
    "OfferOutcome",
    "OfferRecord",
    "Records",
    "RecordsUnavailable",
    "SqlRecords",
    "migrate",
]
