"""Business hours: pure."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from loopline.config.schema import BusinessHours
from loopline.domain.calls import TimeFacts


def time_facts(hours: BusinessHours, now: datetime) -> TimeFacts:
    """The CEL `time` variable: local hour and weekday, and whether the business is open."""
    local = now.astimezone(ZoneInfo(hours.timezone))
    span = hours.span(local.weekday())
    open_now = (
        span is not None
        and local.date() not in hours.holidays
        and span[0] <= local.time().replace(tzinfo=None) < span[1]
    )
    return TimeFacts(
        hour=local.hour, weekday=local.weekday(), in_business_hours=open_now, iso=local.isoformat()
    )
