"""Ad spend rows, by day, source and campaign, from a CSV export or JSON. Pure parsing.

Columns (header names are matched case-insensitively, spaces and dashes as underscores):
`day` (or `date`, YYYY-MM-DD), `source`, `campaign`, `cost` (or `spend`, `amount`), and
optionally `currency`, `clicks`, `conversions` and `conversion_value` (the platform's own
digital conversions, so KPIs count web and phone together).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

_ALIASES = {"date": "day", "spend": "cost", "amount": "cost", "revenue": "conversion_value"}


class SpendLine(BaseModel):
    day: date
    source: str = Field(min_length=1, max_length=200)
    campaign: str = Field(min_length=1, max_length=200)
    cost: float = Field(ge=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    clicks: int = Field(default=0, ge=0)
    conversions: float = Field(default=0.0, ge=0)
    conversion_value: float = Field(default=0.0, ge=0)

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    def row(self) -> dict[str, Any]:
        return self.model_dump()


class SpendError(ValueError):
    """Lines that could not be read: "line N: problem" each (no values echoed)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems[:10]))


def _key(name: str) -> str:
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return _ALIASES.get(key, key)


def parse_rows(rows: Iterable[Mapping[str, Any]], first_line: int = 1) -> list[SpendLine]:
    out: list[SpendLine] = []
    problems: list[str] = []
    for n, raw in enumerate(rows, start=first_line):
        data = {_key(k): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k}
        data = {k: v for k, v in data.items() if v not in ("", None)}
        try:
            out.append(SpendLine.model_validate(data))
        except ValidationError as exc:
            fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
            problems.append(f"line {n}: bad or missing {', '.join(fields) or 'values'}")
    if problems:
        raise SpendError(problems)
    return out


def parse_csv(text: str) -> list[SpendLine]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        raise SpendError(["line 1: no header"])
    return parse_rows(reader, first_line=2)
