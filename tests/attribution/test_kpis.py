"""KPIs from a seeded month of calls and spend, against figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from loopline.attribution.facts import CallFacts
from loopline.attribution.kpis import report_csv
from loopline.attribution.spend import SpendError, parse_csv
from loopline.attribution.store import AttributionStore
from loopline.domain.journey import JourneyMatch
from loopline.domain.outcomes import Conversion, Outcome, QaScore

NOW = datetime(2026, 2, 2, 12, 0, tzinfo=UTC)

# call, day of January (32 = Feb 1), campaign, source, speed s (None: missed), handle s,
# transferred, sale value (None: no conversion), QA score
CALLS = [
    ("c1", 3, "spring-sale", "google", 10, 300, False, 450.0, 80.0),
    ("c2", 3, "spring-sale", "google", 20, 120, False, None, 60.0),
    ("c3", 10, "spring-sale", "google", None, None, False, None, None),
    ("c4", 15, "spring-sale", "google", 30, 600, True, 300.0, None),
    ("c5", 20, "radio-fall", "radio", 5, 60, False, None, 100.0),
    ("c6", 31, "radio-fall", "radio", None, None, False, None, None),
    ("c7", 32, "spring-sale", "google", 10, 100, False, 999.0, 90.0),  # February: outside
]

SPEND_CSV = """Date,Source,Campaign,Cost,Currency,Clicks,Conversions,Conversion Value
2026-01-03,google,spring-sale,100,usd,50,2,40
2026-01-15,google,spring-sale,200,USD,100,1,20
2026-01-01,radio,radio-fall,500,USD,0,0,0
2026-02-01,google,spring-sale,1000,USD,400,9,900
"""


async def seed_month(store: AttributionStore) -> None:
    for call_id, day, campaign, source, speed, handle, transferred, value, qa in CALLS:
        received = datetime(2026, 1, 1, 14, 0, tzinfo=UTC) + timedelta(days=day - 1)
        answered = received + timedelta(seconds=speed) if speed is not None else None
        ended = (
            (answered + timedelta(seconds=handle))
            if answered and handle
            else received + timedelta(seconds=40)
        )
        facts = CallFacts(
            call_id=call_id,
            received_at=received,
            answered_at=answered,
            ended_at=ended,
            agent_id="ana" if answered else None,
            caller_number="+14155550100",
            campaign=campaign,
            journey=JourneyMatch(session_id=f"s-{call_id}", campaign=campaign, source=source),
            offered_agents=["ben", "ana"] if transferred else (["ana"] if answered else []),
        )
        label = "sale" if value is not None else ("missed" if answered is None else "support")
        outcome = Outcome(
            call_id=call_id,
            label=label,
            confidence=1.0,
            source="disposition",
            value=value,
            at=ended,
        )
        conversions = (
            [
                Conversion(
                    id=f"cv_{call_id}",
                    call_id=call_id,
                    name="Phone sale",
                    value=value,
                    currency="USD",
                    occurred_at=ended,
                    outcome="sale",
                    destinations=[],
                )
            ]
            if value is not None
            else []
        )
        if qa is not None:
            await store.record_qa(
                QaScore(call_id=call_id, score=qa, points=qa, max_points=100, at=ended)
            )
        await store.record_outcome(outcome, facts, conversions, now=NOW, hold_s=0, zone="UTC")
    await store.upsert_spend([line.row() for line in parse_csv(SPEND_CSV)], NOW)


async def test_kpis_match_the_hand_computed_figures(store: AttributionStore) -> None:
    await seed_month(store)
    report = await store.kpis(date(2026, 1, 1), date(2026, 1, 31), "campaign")
    t = report.totals
    assert (t.calls, t.answered, t.phone_conversions, t.phone_revenue) == (6, 4, 2, 750.0)
    assert (t.spend, t.conversions, t.revenue) == (800.0, 5.0, 810.0)
    assert t.roas == 1.0125  # 810 / 800
    assert t.cpa == 160.0  # 800 / 5
    assert t.conversion_rate == 0.0333  # 5 / 150 clicks
    assert t.call_conversion_rate == 0.3333  # 2 / 6
    assert t.answer_rate == 0.6667  # 4 / 6
    assert t.close_rate == 0.5  # 2 of 4 answered converted
    assert t.speed_to_answer_s == 16.25  # (10 + 20 + 30 + 5) / 4
    assert t.handle_time_s == 270.0  # (300 + 120 + 600 + 60) / 4
    assert t.transfer_rate == 0.25  # 1 of 4 answered
    assert (t.qa_coverage, t.qa_average) == (0.75, 80.0)  # 3 of 4; (80 + 60 + 100) / 3

    radio, spring = report.groups  # in key order
    assert spring.key == "spring-sale"
    assert (spring.calls, spring.spend, spring.revenue, spring.roas, spring.cpa) == (
        4,
        300.0,
        810.0,
        2.7,
        60.0,
    )
    assert (spring.answer_rate, spring.close_rate, spring.speed_to_answer_s) == (0.75, 0.6667, 20.0)
    assert (spring.handle_time_s, spring.transfer_rate, spring.qa_coverage, spring.qa_average) == (
        340.0,
        0.3333,
        0.6667,
        70.0,
    )
    assert radio.key == "radio-fall"
    assert (radio.calls, radio.spend, radio.revenue, radio.roas, radio.cpa) == (
        2,
        500.0,
        0.0,
        0.0,
        None,
    )
    assert (radio.conversion_rate, radio.answer_rate, radio.close_rate) == (None, 0.5, 0.0)

    days = {d["day"]: d for d in report.trend}
    assert days["2026-01-03"] == {
        "day": "2026-01-03",
        "calls": 2,
        "answered": 2,
        "conversions": 3.0,
        "revenue": 490.0,
        "spend": 100.0,
    }
    assert days["2026-01-01"]["spend"] == 500.0 and "2026-02-01" not in days

    by_agent = await store.kpis(date(2026, 1, 1), date(2026, 1, 31), "agent")
    assert [(g.key, g.calls, g.spend) for g in by_agent.groups] == [
        ("ana", 4, None),
        (None, 2, None),
    ]
    text = report_csv(report).splitlines()
    assert text[0].startswith("campaign,calls,answered,spend,revenue")
    assert text[-1].startswith("(total),6,4,800.0,810.0")


async def test_a_disposition_replaces_the_automatic_outcome_in_the_kpis(
    store: AttributionStore,
) -> None:
    await seed_month(store)
    facts = CallFacts(
        call_id="c2",
        received_at=datetime(2026, 1, 3, 14, 0, tzinfo=UTC),
        answered_at=datetime(2026, 1, 3, 14, 0, 20, tzinfo=UTC),
        campaign="spring-sale",
    )
    auto = Outcome(call_id="c2", label="not_a_lead", confidence=0.3, source="default", at=NOW)
    result = await store.record_outcome(auto, facts, [], now=NOW, hold_s=0, zone="UTC")
    assert not result.applied  # c2 was dispositioned: the automatic pass does not replace it
    report = await store.kpis(date(2026, 1, 3), date(2026, 1, 3), "campaign")
    assert report.totals.calls == 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("day,source,campaign,cost\n2026-13-01,google,x,10\n", "line 2: bad or missing day"),
        ("day,source,campaign,cost\n2026-01-01,google,x,-5\n", "line 2: bad or missing cost"),
        ("day,source,cost\n2026-01-01,google,5\n", "line 2: bad or missing campaign"),
        ("", "line 1: no header"),
    ],
)
def test_spend_import_refuses_bad_lines(text: str, problem: str) -> None:
    with pytest.raises(SpendError) as caught:
        parse_csv(text)
    assert caught.value.problems == [problem]


async def test_running_sums_equal_a_rebuild_from_the_call_rows(store: AttributionStore) -> None:
    await seed_month(store)
    # Later changes: a new QA score, an agent changing a call's outcome, a call forgotten.
    await store.record_qa(QaScore(call_id="c4", score=50.0, points=50, max_points=100, at=NOW))
    facts = CallFacts(
        call_id="c2",
        received_at=datetime(2026, 1, 3, 14, 0, tzinfo=UTC),
        answered_at=datetime(2026, 1, 3, 14, 0, 20, tzinfo=UTC),
        ended_at=datetime(2026, 1, 3, 14, 2, 20, tzinfo=UTC),
        agent_id="ben",
        campaign="spring-sale",
        journey=JourneyMatch(session_id="s-c2", campaign="spring-sale", source="google"),
    )
    sale = Outcome(
        call_id="c2", label="sale", confidence=1.0, source="disposition", value=75.0, at=NOW
    )
    conv = Conversion(
        id="cv_c2",
        call_id="c2",
        name="Phone sale",
        value=75.0,
        currency="USD",
        occurred_at=NOW,
        outcome="sale",
    )
    await store.record_outcome(sale, facts, [conv], now=NOW, hold_s=0, zone="UTC")
    await store.forget_call("c5")
    reports = []
    for _ in range(2):
        reports.append(
            [
                await store.kpis(date(2026, 1, 1), date(2026, 2, 28), g)
                for g in ("campaign", "agent", "source")
            ]
        )
        await store.rebuild_rollups()
    assert reports[0] == reports[1]
    assert reports[0][0].totals.calls == 6 and reports[0][0].totals.phone_revenue == 1824.0
