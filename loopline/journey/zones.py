"""North American time zones as matching evidence: the caller's area code against the
visitor's browser time zone. Pure.

When a number has had several holders, a call's timing alone often cannot say which one
phoned. A caller whose number belongs to a Central-time state is likelier to be the holder
whose browser said America/Chicago. Numbers move with people (ported mobiles), so agreement is
evidence, not proof: `zone_weight` is a likelihood ratio under the assumption that a caller's
number names their current zone with probability `agreement`. The attribution simulation
(bench/bench_journey_attribution.py) measured what it buys.
"""

from __future__ import annotations

# Each state's or province's zone where most of its people live (TX, FL, IN, KY, TN, ND, SD,
# NE, KS, OR, ID and ON, NU span two).
_STATES = {
    "ET": "CT DC DE FL GA IN KY MA MD ME MI NC NH NJ NY OH PA RI SC VA VT WV ON QC NB NS PE NL",
    "CT": "AL AR IA IL KS LA MN MO MS ND NE OK SD TN TX WI MB SK",
    "MT": "AZ CO MT NM UT WY AB",
    "PT": "CA NV OR WA ID BC",
    "AKT": "AK",
    "HT": "HI",
}
_ZONE_OF_STATE = {state: zone for zone, states in _STATES.items() for state in states.split()}

# IANA names browsers report, by zone; anything else in America/ is left unknown.
_TZ = {
    "ET": "New_York Detroit Toronto Montreal Nassau Indiana/Indianapolis Indiana/Vincennes "
    "Indiana/Winamac Indiana/Marengo Indiana/Petersburg Indiana/Vevay Kentucky/Louisville "
    "Kentucky/Monticello Halifax Moncton Glace_Bay Goose_Bay St_Johns Iqaluit",
    "CT": "Chicago Winnipeg Indiana/Knox Indiana/Tell_City Menominee North_Dakota/Center "
    "North_Dakota/New_Salem North_Dakota/Beulah Regina Swift_Current Rankin_Inlet Matamoros",
    "MT": "Denver Phoenix Boise Edmonton Yellowknife Cambridge_Bay Inuvik Ojinaga",
    "PT": "Los_Angeles Vancouver Tijuana Whitehorse Dawson",
    "AKT": "Anchorage Juneau Sitka Yakutat Nome Metlakatla",
}
_ZONE_OF_TZ = {f"America/{name}": zone for zone, names in _TZ.items() for name in names.split()}
_ZONE_OF_TZ["Pacific/Honolulu"] = "HT"
_ZONE_OF_TZ.update({"US/Eastern": "ET", "US/Central": "CT", "US/Mountain": "MT",
                    "US/Pacific": "PT", "US/Arizona": "MT", "US/Alaska": "AKT",
                    "US/Hawaii": "HT"})  # fmt: skip

# Share of the US and Canadian population by zone: the chance that a caller and a visitor
# agree by accident.
SHARES = {"ET": 0.47, "CT": 0.29, "MT": 0.07, "PT": 0.16, "AKT": 0.003, "HT": 0.004}
AGREEMENT = 0.8


def zone_of_state(state: str | None) -> str | None:
    return _ZONE_OF_STATE.get((state or "").upper())


def zone_of_tz(tz: str | None) -> str | None:
    return _ZONE_OF_TZ.get(tz or "")


def zone_of_region(region: str | None) -> str | None:
    """A lease's region as a zone: a zone code ("CT") as is, a browser zone name mapped."""
    if region in SHARES:
        return region
    return zone_of_tz(region)


def zone_weight(
    caller_zone: str | None, visitor_zone: str | None, agreement: float = AGREEMENT
) -> float:
    """How much likelier this visitor made the call given both zones (1.0: no evidence)."""
    if caller_zone is None or visitor_zone is None or visitor_zone not in SHARES:
        return 1.0
    share = SHARES[visitor_zone]
    if caller_zone == visitor_zone:
        return agreement / share
    return (1 - agreement) / (1 - share)
