"""Policy sets: compile once, first match wins, errors never crash a call."""

from __future__ import annotations

from typing import Any

import pytest

from loopline.domain import Policy, Route
from loopline.policies import DEFAULT_POLICY, PolicyError, PolicyFailure, PolicySet

from .builders import context, spring_journey

DEFAULT = Route(queue="general")


def _policy(name: str, when: str, queue: str | None = None) -> Policy:
    return Policy(name=name, when=when, route=Route(queue=queue or name))


RULES = [
    _policy("vip", 'crm.tier == "vip"'),
    _policy("cancel", 'intent.name == "cancel" && intent.confidence > 0.6'),
    _policy("churn", "crm.churn_risk > 0.7"),  # no has(): errors when the key is missing
    _policy("west", 'caller.region in ["CA", "NY"]'),
    _policy("spring", 'journey.campaign == "spring"'),  # errors on a null journey
    _policy("night", "time.hour >= 20 && !time.in_business_hours"),
    _policy("busy", "queues.sales.waiting > 5"),
]


@pytest.mark.parametrize(
    ("variables", "policy", "failed"),
    [
        # first match wins even when later rules match too
        (
            context(crm={"tier": "vip", "churn_risk": 0.9}, intent="cancel", confidence=0.9),
            "vip",
            [],
        ),
        (
            context(crm={"tier": "gold", "churn_risk": 0.1}, intent="cancel", confidence=0.9),
            "cancel",
            [],
        ),
        (
            context(crm={"tier": "gold", "churn_risk": 0.8}, intent="cancel", confidence=0.5),
            "churn",
            [],
        ),
        # a missing key makes that rule fail (reported), and matching goes on
        (context(crm={"tier": "gold"}, region="NY"), "west", ["churn"]),
        (context(crm={}, region="NY"), "west", ["vip", "churn"]),
        # a null journey makes the journey rule fail; nothing else matches: default
        (
            context(crm={"tier": "gold", "churn_risk": 0.1}, region="TX"),
            DEFAULT_POLICY,
            ["spring", "busy"],
        ),
        (
            context(crm={"tier": "gold", "churn_risk": 0.1}, region="TX", journey=spring_journey()),
            "spring",
            [],
        ),
        (
            context(
                crm={"tier": "gold", "churn_risk": 0.1},
                region=None,
                hour=21,
                in_business_hours=False,
            ),
            "night",
            ["spring"],
        ),
    ],
)
def test_first_match_wins(variables: Any, policy: str, failed: list[str]) -> None:
    policies = PolicySet.compile(RULES, DEFAULT)
    match = policies.match(variables.cel_vars())
    assert match.policy == policy
    assert [f.policy for f in match.failures] == failed
    if policy == DEFAULT_POLICY:
        assert match.expression is None
        assert match.route == DEFAULT
    else:
        chosen = next(p for p in RULES if p.name == policy)
        assert match.expression == chosen.when
        assert match.route == chosen.route


def test_failure_records_expression_and_error() -> None:
    variables = context(crm={"tier": "gold"}, region="NY").cel_vars()
    match = PolicySet.compile(RULES, DEFAULT).match(variables)
    assert match.failures == (
        PolicyFailure("churn", "crm.churn_risk > 0.7", "no such key 'churn_risk'"),
    )


@pytest.mark.parametrize(
    ("when", "crm", "error"),
    [
        ("crm.tier", {"tier": "vip"}, "evaluated to str 'vip', not a bool"),
        ("crm.ltv * 2", {"ltv": 10}, "evaluated to int 20, not a bool"),
        ("crm.tags", {"tags": ["a"]}, "evaluated to list ['a'], not a bool"),
        ("crm.flag", {"flag": None}, "evaluated to NoneType None, not a bool"),
    ],
)
def test_non_bool_is_no_match(when: str, crm: dict[str, Any], error: str) -> None:
    policies = PolicySet.compile([_policy("odd", when), _policy("all", "true")], DEFAULT)
    match = policies.match(context(crm=crm).cel_vars())
    assert match.policy == "all"
    assert match.failures == (PolicyFailure("odd", when, error),)


def test_empty_set_routes_to_default() -> None:
    match = PolicySet.compile([], DEFAULT).match(context().cel_vars())
    assert (match.policy, match.expression, match.route, match.failures) == (
        DEFAULT_POLICY,
        None,
        DEFAULT,
        (),
    )


@pytest.mark.parametrize(
    ("when", "fragments"),
    [
        ("crm.tier ==", ["policy 'broken'", "`crm.tier ==`", "common-expression-language", "1:12"]),
        ('crm.tier = "vip"', ["policy 'broken'", "Syntax error"]),
        ("crm.tier == 'vip' &&", ["policy 'broken'", "Syntax error"]),
        ("customer.tier == 'vip'", ["policy 'broken'", "unknown variable customer"]),
    ],
)
def test_bad_expression_names_the_policy(when: str, fragments: list[str]) -> None:
    rules = [RULES[0], _policy("broken", when), RULES[1]]
    with pytest.raises(PolicyError) as raised:
        PolicySet.compile(rules, DEFAULT)
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_duplicate_names_rejected() -> None:
    with pytest.raises(PolicyError, match="policy 'vip' is defined twice"):
        PolicySet.compile([RULES[0], _policy("vip", "true")], DEFAULT)


def test_set_exposes_policies_and_projection() -> None:
    policies = PolicySet.compile(RULES, DEFAULT)
    assert policies.policies == tuple(RULES)
    assert len(policies) == len(RULES)
    assert policies.default == DEFAULT
    assert policies.projection["crm"] == frozenset({"tier", "churn_risk"})
    assert policies.projection["queues"] == frozenset({"sales"})


def test_projection_keeps_unread_fields_out_but_results_intact() -> None:
    rules = [_policy("wide", "crm.field_25 == 25 && crm.field_3 == 3")]
    crm = {f"field_{i}": i for i in range(30)}
    assert PolicySet.compile(rules, DEFAULT).match(context(crm=crm).cel_vars()).policy == "wide"
