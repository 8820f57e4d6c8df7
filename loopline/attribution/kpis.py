"""KPIs: pure arithmetic over aggregates, and the SQL that makes the aggregates.

Phone and digital results are counted together: phone conversions and revenue come from the
calls (their running daily sums in `kpi_daily`), digital ones from the imported spend rows
(the platforms' own counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy import Integer, case, cast, delete, func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from loopline.records.attribution_tables import CallFactRow, KpiDailyRow, SpendRow

GroupBy = Literal["campaign", "source", "keyword", "agent", "intent"]
GROUP_COLUMNS = {
    "campaign": CallFactRow.campaign,
    "source": CallFactRow.source,
    "keyword": CallFactRow.keyword,
    "agent": CallFactRow.agent_id,
    "intent": CallFactRow.intent,
}
# `call_facts` column of each grouping, as `kpi_daily.dim` names it.
DIM_FIELDS = {"campaign": "campaign", "source": "source", "keyword": "keyword", "agent": "agent_id",
              "intent": "intent"}  # fmt: skip
NO_KEY = ""  # `kpi_daily.key` of calls with no campaign (source, agent...)
# Spend is kept by source and campaign, so only those groupings can carry it.
SPEND_COLUMNS = {"campaign": SpendRow.campaign, "source": SpendRow.source}


@dataclass
class CallAggregate:
    calls: int = 0
    answered: int = 0
    speed_sum_s: float = 0.0
    speed_n: int = 0
    handle_sum_s: float = 0.0
    handle_n: int = 0
    transferred: int = 0
    converted_calls: int = 0
    answered_converted: int = 0
    conversions: int = 0
    revenue: float = 0.0
    qa_scored: int = 0
    qa_sum: float = 0.0

    def add(self, other: CallAggregate) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class SpendAggregate:
    cost: float = 0.0
    clicks: int = 0
    conversions: float = 0.0
    conversion_value: float = 0.0

    def add(self, other: SpendAggregate) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


SUM_FIELDS = tuple(CallAggregate.__dataclass_fields__)


def contribution(fact: Mapping[str, Any]) -> CallAggregate:
    """What one call's `call_facts` row adds to its day's sums."""
    answered = bool(fact["answered"])
    converted = (fact["conversions"] or 0) > 0
    speed, handle, qa = fact["speed_to_answer_s"], fact["handle_s"], fact["qa_score"]
    return CallAggregate(
        calls=1,
        answered=int(answered),
        speed_sum_s=float(speed or 0.0),
        speed_n=int(speed is not None),
        handle_sum_s=float(handle or 0.0),
        handle_n=int(handle is not None),
        transferred=int(bool(fact["transferred"]) and answered),
        converted_calls=int(converted),
        answered_converted=int(converted and answered),
        conversions=int(fact["conversions"] or 0),
        revenue=float(fact["revenue"] or 0.0),
        qa_scored=int(qa is not None),
        qa_sum=float(qa or 0.0),
    )


def rollup_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> dict[tuple[date, str, str], CallAggregate]:
    """The change to `kpi_daily` when a call's facts go from `before` (None: new) to `after`."""
    changes: dict[tuple[date, str, str], CallAggregate] = {}
    for sign, fact in ((-1, before), (1, after)):
        if fact is None:
            continue
        part = contribution(fact)
        for dim, field_name in DIM_FIELDS.items():
            slot = (fact["day"], dim, fact[field_name] or NO_KEY)
            total = changes.setdefault(slot, CallAggregate())
            for name in SUM_FIELDS:
                setattr(total, name, getattr(total, name) + sign * getattr(part, name))
    return {k: v for k, v in changes.items() if any(getattr(v, n) for n in SUM_FIELDS)}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


@dataclass
class Kpis:
    key: str | None
    calls: int
    answered: int
    spend: float | None
    revenue: float
    phone_revenue: float
    conversions: float
    phone_conversions: int
    roas: float | None  # revenue / spend
    cpa: float | None  # spend / conversions
    conversion_rate: float | None  # (phone + digital conversions) / clicks
    call_conversion_rate: float | None  # calls that converted / calls
    answer_rate: float | None
    close_rate: float | None  # answered calls that converted / answered calls
    speed_to_answer_s: float | None
    transfer_rate: float | None  # answered calls that moved between agents / answered calls
    handle_time_s: float | None
    qa_coverage: float | None  # answered calls with a QA score / answered calls
    qa_average: float | None
    extra: dict[str, Any] = field(default_factory=dict)


def compute(key: str | None, calls: CallAggregate, spend: SpendAggregate | None) -> Kpis:
    digital_conv = spend.conversions if spend else 0.0
    digital_value = spend.conversion_value if spend else 0.0
    conversions = calls.conversions + digital_conv
    revenue = calls.revenue + digital_value
    cost = spend.cost if spend else None
    return Kpis(
        key=key,
        calls=calls.calls,
        answered=calls.answered,
        spend=round(cost, 2) if cost is not None else None,
        revenue=round(revenue, 2),
        phone_revenue=round(calls.revenue, 2),
        conversions=conversions,
        phone_conversions=calls.conversions,
        roas=_ratio(revenue, cost) if cost is not None else None,
        cpa=round(cost / conversions, 2) if cost is not None and conversions else None,
        conversion_rate=_ratio(conversions, spend.clicks) if spend else None,
        call_conversion_rate=_ratio(calls.converted_calls, calls.calls),
        answer_rate=_ratio(calls.answered, calls.calls),
        close_rate=_ratio(calls.answered_converted, calls.answered),
        speed_to_answer_s=_ratio(calls.speed_sum_s, calls.speed_n),
        transfer_rate=_ratio(calls.transferred, calls.answered),
        handle_time_s=_ratio(calls.handle_sum_s, calls.handle_n),
        qa_coverage=_ratio(calls.qa_scored, calls.answered),
        qa_average=_ratio(calls.qa_sum, calls.qa_scored),
    )


@dataclass
class KpiReport:
    start: date
    end: date
    group_by: GroupBy
    totals: Kpis
    groups: list[Kpis]
    trend: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "group_by": self.group_by,
            "totals": asdict(self.totals),
            "groups": [asdict(g) for g in self.groups],
            "trend": self.trend,
        }


def _flag(column: Any) -> Any:
    return func.sum(case((column, 1), else_=0))


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(getattr(KpiDailyRow, name)), 0) for name in SUM_FIELDS]


def _calls(row: Any) -> CallAggregate:
    return CallAggregate(*(v if v is not None else 0 for v in row))


async def rebuild_rollups(session: AsyncSession) -> None:
    """`kpi_daily` made again from `call_facts` (after a bulk load, or to repair)."""
    f = CallFactRow
    converted = f.conversions > 0
    await session.execute(delete(KpiDailyRow))
    for dim, field_name in DIM_FIELDS.items():
        key = func.coalesce(getattr(f, field_name), NO_KEY)
        query = select(
            f.day,
            literal(dim),
            key,
            func.count(),
            _flag(f.answered),
            func.coalesce(func.sum(f.speed_to_answer_s), 0.0),
            func.count(f.speed_to_answer_s),
            func.coalesce(func.sum(f.handle_s), 0.0),
            func.count(f.handle_s),
            func.sum(case((f.transferred & f.answered, 1), else_=0)),
            _flag(converted),
            func.sum(case((converted & f.answered, 1), else_=0)),
            func.coalesce(func.sum(cast(f.conversions, Integer)), 0),
            func.coalesce(func.sum(f.revenue), 0.0),
            func.count(f.qa_score),
            func.coalesce(func.sum(f.qa_score), 0.0),
        ).group_by(f.day, key)
        columns = ["day", "dim", "key", *SUM_FIELDS]
        await session.execute(insert(KpiDailyRow).from_select(columns, query))


async def kpi_report(session: AsyncSession, start: date, end: date, group_by: GroupBy) -> KpiReport:
    """KPIs for the days [start, end] (inclusive, in the attribution timezone)."""
    k = KpiDailyRow
    in_range = k.day.between(start, end)
    grouped = await session.execute(
        select(k.key, *_sums())
        .where(in_range, k.dim == group_by)
        .group_by(k.key)
        .having(func.sum(k.calls) > 0)  # sums whose calls were all forgotten
    )
    by_key: dict[str | None, CallAggregate] = {
        (row[0] if row[0] != NO_KEY else None): _calls(row[1:]) for row in grouped
    }
    spend_rows = await session.execute(
        select(
            SpendRow.day,
            SpendRow.source,
            SpendRow.campaign,
            func.sum(SpendRow.cost),
            func.sum(SpendRow.clicks),
            func.sum(SpendRow.conversions),
            func.sum(SpendRow.conversion_value),
        )
        .where(SpendRow.day.between(start, end))
        .group_by(SpendRow.day, SpendRow.source, SpendRow.campaign)
    )
    spend_total = SpendAggregate()
    spend_by: dict[str | None, SpendAggregate] = {}
    spend_by_day: dict[date, SpendAggregate] = {}
    for day, source, campaign, cost, clicks, conv, value in spend_rows:
        part = SpendAggregate(
            float(cost or 0), int(clicks or 0), float(conv or 0), float(value or 0)
        )
        spend_total.add(part)
        spend_by_day.setdefault(day, SpendAggregate()).add(part)
        if group_by in SPEND_COLUMNS:
            key = campaign if group_by == "campaign" else source
            spend_by.setdefault(key, SpendAggregate()).add(part)
    totals = CallAggregate()
    for agg in by_key.values():
        totals.add(agg)
    keys = sorted(set(by_key) | set(spend_by), key=lambda key: (key is None, key or ""))
    groups = [
        compute(
            key,
            by_key.get(key, CallAggregate()),
            spend_by.get(key, SpendAggregate()) if group_by in SPEND_COLUMNS else None,
        )
        for key in keys
    ]
    # Every call counts once under each grouping: the campaign sums are the day's totals.
    daily = await session.execute(
        select(k.day, func.sum(k.calls), func.sum(k.answered), func.sum(k.conversions),
               func.sum(k.revenue))
        .where(in_range, k.dim == "campaign")
        .group_by(k.day)
        .having(func.sum(k.calls) > 0)
        .order_by(k.day)
    )  # fmt: skip
    trend_days: dict[date, dict[str, Any]] = {}
    for day, calls, answered, conversions, revenue in daily:
        trend_days[day] = {
            "day": day.isoformat(),
            "calls": int(calls or 0),
            "answered": int(answered or 0),
            "conversions": int(conversions or 0),
            "revenue": round(float(revenue or 0), 2),
            "spend": 0.0,
        }
    for day, part in spend_by_day.items():
        entry = trend_days.setdefault(
            day,
            {"day": day.isoformat(), "calls": 0, "answered": 0, "conversions": 0, "revenue": 0.0,
             "spend": 0.0},
        )  # fmt: skip
        entry["spend"] = round(part.cost, 2)
        entry["revenue"] = round(entry["revenue"] + part.conversion_value, 2)
        entry["conversions"] = entry["conversions"] + part.conversions
    return KpiReport(
        start=start,
        end=end,
        group_by=group_by,
        totals=compute(None, totals, spend_total),
        groups=groups,
        trend=[trend_days[d] for d in sorted(trend_days)],
    )


CSV_COLUMNS = (
    "key", "calls", "answered", "spend", "revenue", "conversions", "roas", "cpa",
    "conversion_rate", "call_conversion_rate", "answer_rate", "close_rate", "speed_to_answer_s",
    "transfer_rate", "handle_time_s", "qa_coverage", "qa_average",
)  # fmt: skip


def report_csv(report: KpiReport) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([report.group_by if c == "key" else c for c in CSV_COLUMNS])
    for row in [*report.groups, report.totals]:
        data = asdict(row)
        data["key"] = (
            "(total)" if row is report.totals else (row.key if row.key is not None else "(none)")
        )
        writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
    return out.getvalue()
