"""The CRM facts routing and the screen-pop rely on, in one known shape.

CRMs name and type the same facts differently (`LTV: "$1,200"`, `churnScore: 82`,
`ticketsOpen: "3"`). `normalise_crm_record` maps the usual spellings onto five typed fields so
that a policy can say `crm.churn_risk >= 0.7` whatever the source:

| field | type | accepted |
| --- | --- | --- |
| `tier` | str | any non-empty text, kept as written (`vip`, `gold`) |
| `lifetime_value` | float | a number, or text such as `"$1,200.50"` |
| `churn_risk` | float in [0, 1] | a fraction, a percentage (`82`, `"82%"`) |
| `open_tickets` | int >= 0 | a whole number or its text |
| `last_agent` | str | an agent id |

Other fields pass through untouched. A value that does not parse stays under the key the CRM
gave it, so nothing is lost, but the known field is then absent (`has(crm.churn_risk)` false).
Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

KNOWN_FIELDS = ("tier", "lifetime_value", "churn_risk", "open_tickets", "last_agent")

# Spellings seen in CRM exports, after `_canonical_key` (lower snake case).
ALIASES: dict[str, tuple[str, ...]] = {
    "tier": ("tier", "customer_tier", "segment", "level", "plan_tier"),
    "lifetime_value": (
        "lifetime_value",
        "ltv",
        "clv",
        "customer_lifetime_value",
        "lifetime_revenue",
    ),
    "churn_risk": ("churn_risk", "churn", "churn_score", "churn_probability", "churn_likelihood"),
    "open_tickets": ("open_tickets", "tickets_open", "open_cases", "open_ticket_count"),
    "last_agent": ("last_agent", "last_agent_id", "last_rep", "owner_agent"),
}
_ALIAS_TO_FIELD = {alias: field for field, aliases in ALIASES.items() for alias in aliases}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_MONEY = re.compile(r"^[^\d\-+.]*([-+]?[\d,]*\.?\d+)\s*$")


def _canonical_key(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", _CAMEL.sub("_", key.strip())).lower()


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        found = _MONEY.match(value.strip())
        if found is None:
            return None
        try:
            number = float(found.group(1).replace(",", ""))
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an id stored as a REAL or read from a spreadsheet
    text = str(value).strip() if isinstance(value, str | int | float) else ""
    return text or None


def _lifetime_value(value: object) -> float | None:
    return _number(value)


def _churn_risk(value: object) -> float | None:
    percent = isinstance(value, str) and value.strip().endswith("%")
    number = _number(value.strip().rstrip("%") if isinstance(value, str) else value)
    if number is None or number < 0:
        return None
    if percent or number > 1:
        number /= 100  # 82 and "82%" both mean 0.82
    return round(number, 6) if number <= 1 else None


def _open_tickets(value: object) -> int | None:
    number = _number(value)
    if number is None or number < 0 or not number.is_integer():
        return None
    return int(number)


_PARSERS: dict[str, Callable[[object], object | None]] = {
    "tier": _text,
    "lifetime_value": _lifetime_value,
    "churn_risk": _churn_risk,
    "open_tickets": _open_tickets,
    "last_agent": _text,
}


def normalise_crm_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with the known fields under their own names and types (see the module)."""
    out: dict[str, Any] = {}
    found: dict[str, tuple[bool, str, Any]] = {}  # field -> (exact name?, original key, value)
    for key, value in record.items():
        field = _ALIAS_TO_FIELD.get(_canonical_key(str(key)))
        if field is None:
            out[str(key)] = value
            continue
        exact = str(key) == field
        current = found.get(field)
        # The field's own name wins over an alias; between aliases, the first one listed.
        if current is None or (exact and not current[0]):
            if current is not None:
                out[current[1]] = current[2]
            found[field] = (exact, str(key), value)
        else:
            out[str(key)] = value
    for field, (_, key, value) in found.items():
        parsed = _PARSERS[field](value)
        if parsed is None:
            out[key] = value  # kept as the CRM gave it; the typed field stays absent
        else:
            out[field] = parsed
    return out
