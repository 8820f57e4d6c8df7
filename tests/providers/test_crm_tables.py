"""Embedded CRM tables (CSV, SQLite) and the known CRM fields, as tables of cases."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from loopline.providers.crm import CrmError, FileCrm
from loopline.providers.crm_fields import normalise_crm_record

ALICE = "+14155552671"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {
                "tier": "vip",
                "lifetime_value": 1200,
                "churn_risk": 0.82,
                "open_tickets": 2,
                "last_agent": "ana",
            },
            {
                "tier": "vip",
                "lifetime_value": 1200.0,
                "churn_risk": 0.82,
                "open_tickets": 2,
                "last_agent": "ana",
            },
        ),
        (
            {
                "Customer Tier": " Gold ",
                "LTV": "$1,200.50",
                "churnScore": "82%",
                "ticketsOpen": "3",
                "lastAgentId": 7,
                "name": "Alice",
            },
            {
                "tier": "Gold",
                "lifetime_value": 1200.5,
                "churn_risk": 0.82,
                "open_tickets": 3,
                "last_agent": "7",
                "name": "Alice",
            },
        ),
        ({"churn": 35}, {"churn_risk": 0.35}),  # a percentage without its sign
        ({"open_tickets": 2.0, "last_agent": 12.0}, {"open_tickets": 2, "last_agent": "12"}),
        # What does not parse stays as the CRM gave it; the typed field is absent.
        ({"churn_risk": "high", "open_tickets": -1}, {"churn_risk": "high", "open_tickets": -1}),
        ({"ltv": "n/a", "tier": ""}, {"ltv": "n/a", "tier": ""}),
        ({"open_tickets": True, "churn_risk": 250}, {"open_tickets": True, "churn_risk": 250}),
        # The field's own name beats an alias; the alias is kept as it was.
        ({"ltv": 5, "lifetime_value": "10"}, {"ltv": 5, "lifetime_value": 10.0}),
        (
            {"account_id": "HH-1", "open_ticket": False},
            {"account_id": "HH-1", "open_ticket": False},
        ),
    ],
)
def test_normalise_crm_record(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    assert normalise_crm_record(raw) == expected


CSV_OK = (
    "\ufeffName,Phone,Tier,LTV,Churn Risk,Open Tickets,Last Agent,Zip\n"
    "Alice,+1 415 555 2671,vip,1200,0.82,2,ana,02139\n"
    "\n"
    "Bob,+442071838750,,,,,,\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            CSV_OK,
            {
                ALICE: {
                    "Name": "Alice",
                    "Tier": "vip",
                    "LTV": "1200",
                    "Churn Risk": "0.82",
                    "Open Tickets": "2",
                    "Last Agent": "ana",
                    "Zip": "02139",
                },
                "+442071838750": {"Name": "Bob"},
            },
        ),
        ("number;tier\n+14155552671;gold\n", {ALICE: {"tier": "gold"}}),
        ("", {}),
    ],
)
async def test_file_crm_reads_csv(tmp_path: Path, text: str, expected: dict[str, Any]) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(text, encoding="utf-8")
    crm = FileCrm(path)
    assert await crm.load() == len(expected)
    for number, record in expected.items():
        assert await crm.lookup(number) == record
    if expected:
        # The known fields come out typed once normalised (the router does this).
        assert normalise_crm_record(await crm.lookup(ALICE))["tier"] in {"vip", "gold"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,tier\nAlice,vip\n", "no phone-number column"),
        ("phone,tier\n4155552671,vip\n", "row 2: the number is not a phone number"),
        ("phone,tier\n+14155552671,vip,extra\n", "row 2: 3 cells for 2 columns"),
    ],
)
async def test_file_crm_rejects_bad_csv(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "crm.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CrmError, match=message) as info:
        await FileCrm(path).load()
    assert "555" not in str(info.value)


def _sqlite(path: Path, table: str, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            f'CREATE TABLE "{table}" (phone, tier TEXT, lifetime_value REAL, churn_risk REAL, '
            "open_tickets INTEGER, last_agent TEXT)"
        )
        conn.executemany(f'INSERT INTO "{table}" VALUES (?, ?, ?, ?, ?, ?)', rows)
    conn.close()


@pytest.mark.parametrize("table", ["customers", "my_export"])
async def test_file_crm_reads_sqlite(tmp_path: Path, table: str) -> None:
    path = tmp_path / "crm.sqlite"
    _sqlite(
        path,
        table,
        [(ALICE, "vip", 1200.5, 0.82, 2, "ana"), (14155550100, None, None, None, 0, None)],
    )
    crm = FileCrm(path)
    assert await crm.load() == 2
    assert await crm.lookup(ALICE) == {
        "tier": "vip",
        "lifetime_value": 1200.5,
        "churn_risk": 0.82,
        "open_tickets": 2,
        "last_agent": "ana",
    }
    assert await crm.lookup("+14155550100") == {"open_tickets": 0}  # an integer key works too


async def test_file_crm_sqlite_needs_a_known_table(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    _sqlite(path, "a", [])
    _sqlite(path, "b", [])
    with pytest.raises(CrmError, match="no table named customers"):
        await FileCrm(path).load()
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 10)
    with pytest.raises(CrmError, match="not a readable SQLite CRM"):
        await FileCrm(tmp_path / "junk.db").load()
