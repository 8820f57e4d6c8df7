"""One realistic call context for the benches that evaluate policies over it.

A caller from a paid-search visit about cancelling; each bench overrides what its own
expressions read (`crm`, `time`, `queues`).
"""

from __future__ import annotations

from typing import Any

from loopline.domain import (
    CallContext,
    Caller,
    Intent,
    JourneyMatch,
    QueueStats,
    Signal,
    TimeFacts,
)

BASE_CRM: dict[str, Any] = {"churn_risk": 0.82, "ltv": 4200, "account": "A-1042", "open_tickets": 2}


def sample_context(
    *, crm: dict[str, Any], time: TimeFacts, queues: dict[str, QueueStats]
) -> CallContext:
    return CallContext(
        call_id="call-1",
        caller=Caller(number="+14155550123", valid=True, country="US", region="CA"),
        dialed="+18005550100",
        campaign="spring",
        crm={**BASE_CRM, **crm},
        journey=JourneyMatch(
            session_id="sess-1",
            confidence="active",
            campaign="spring",
            source="google",
            medium="cpc",
            keyword="cancel plan",
            landing_page="/pricing",
            click_ids={"gclid": "abc123"},
            pages=["/", "/pricing", "/account/cancel"],
            time_on_site_s=312.0,
        ),
        intent=Intent(
            name="cancel",
            confidence=0.78,
            signals=[
                Signal(source="journey", detail="visited /account/cancel", weight=2.0),
                Signal(source="crm", detail="churn risk 0.82"),
            ],
        ),
        time=time,
        queues=queues,
    )
