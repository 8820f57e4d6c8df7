"""The CEL wrapper: results on our expression table, errors, and lazy, projected binding."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from loopline.policies import (
    CEL_VARIABLES,
    Bindings,
    ExpressionError,
    compile_expression,
)
from loopline.policies.cel import field_reads

from .builders import context, spring_journey

VIP = context(
    crm={"tier": "vip", "churn_risk": 0.82, "ltv": 4200, "score": 1},
    intent="cancel",
    confidence=0.78,
    journey=spring_journey(),
    hour=10,
    in_business_hours=False,
).cel_vars()
VIP["queues"] = {"sales": {"waiting": 7, "longest_wait_s": 95.0, "agents_available": 1}}
PLAIN = context(crm={"tier": "gold"}, region="TX").cel_vars()


@pytest.mark.parametrize(
    ("source", "variables", "expected"),
    [
        ('crm.tier == "vip"', VIP, True),
        ('crm.tier == "vip"', PLAIN, False),
        ('intent.name == "cancel" && intent.confidence > 0.6', VIP, True),
        ('intent.name == "cancel" && intent.confidence > 0.6', PLAIN, False),
        ('caller.region in ["CA","NY"]', VIP, True),
        ('caller.region in ["CA","NY"]', PLAIN, False),
        ("has(crm.churn_risk) && crm.churn_risk > 0.7", VIP, True),
        ("has(crm.churn_risk) && crm.churn_risk > 0.7", PLAIN, False),
        ('journey != null && journey.campaign == "spring"', VIP, True),
        ('journey != null && journey.campaign == "spring"', PLAIN, False),
        ("time.hour >= 9 && !time.in_business_hours", VIP, True),
        ("time.hour >= 9 && !time.in_business_hours", PLAIN, False),
        ("queues.sales.waiting > 5", VIP, True),
        ("crm.score > 0.7", VIP, True),  # int against double, as current CEL allows
        ('crm.tier == "gold" || crm.churn_risk > 0.7', PLAIN, True),
        ('crm.churn_risk > 0.7 || crm.tier == "gold"', PLAIN, True),  # error absorbed by ||
        ('intent.signals.exists(s, s.source == "speech")', VIP, False),
    ],
)
def test_expression_table(source: str, variables: dict[str, Any], expected: bool) -> None:
    assert compile_expression(source).evaluate(variables) is expected


@pytest.mark.parametrize(
    ("source", "variables", "message"),
    [
        ("crm.churn_risk > 0.7", PLAIN, "no such key 'churn_risk'"),
        ("queues.sales.waiting > 5", PLAIN, "no such key 'sales'"),
        ('journey.campaign == "spring"', PLAIN, "No such overload"),
        ("crm.tier", VIP, "evaluated to str 'vip', not a bool"),
        ("crm.ltv", VIP, "evaluated to int 4200, not a bool"),
        ("crm.tier > 5", VIP, "No such overload"),
        # false || error is an error (only true absorbs it)
        ('crm.tier == "vip" || crm.churn_risk > 0.7', PLAIN, "no such key 'churn_risk'"),
    ],
)
def test_evaluation_errors_raise_expression_error(
    source: str, variables: dict[str, Any], message: str
) -> None:
    with pytest.raises(ExpressionError) as raised:
        compile_expression(source).evaluate(variables)
    assert message in str(raised.value)
    # The engine's paragraph of advice stays out: these messages go into decision reasons.
    assert "Convert explicitly" not in str(raised.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("crm.tier ==", "1:12: Syntax error"),
        ('crm.tier = "vip"', "Syntax error"),
        ('intent.name == "cancel" &&& true', "Syntax error"),
        ("crn.tier == 1", "unknown variable crn"),
        ("foo == 1 && bar", "unknown variable bar, foo"),
    ],
)
def test_compile_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(source)


def test_macro_bindings_are_not_unknown_variables() -> None:
    compiled = compile_expression(
        "intent.signals.all(sig, sig.weight > 0.5) && [1].map(x, x) == [1]"
    )
    assert compiled.evaluate(VIP) is True


def test_unknown_variables_allowed_when_not_checked() -> None:
    compiled = compile_expression("agent.level > 2", known_variables=None)
    assert compiled.evaluate({"agent": {"level": 3}}) is True
    with pytest.raises(ExpressionError, match="Undefined variable or function: 'agent'"):
        compiled.evaluate({})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('crm.tier == "vip"', {"crm": {"tier"}}),
        ("has(crm.churn_risk) && crm . churn_risk > 0.7", {"crm": {"churn_risk"}}),
        ('journey != null && journey.campaign == "spring"', {"journey": {"campaign"}}),
        ('null != journey && journey.source == "g"', {"journey": {"source"}}),
        ("queues.sales.waiting > queues.support.waiting", {"queues": {"sales", "support"}}),
        ('crm["tier"] == "vip"', {"crm": None}),
        ("size(crm) > 2", {"crm": None}),
        ('crm.exists(k, k == "tier")', {"crm": None}),
        ('null == journey["campaign"]', {"journey": None}),
        # text inside strings is not code, raw strings end at the first quote
        ('caller.name == "crm.secret" && crm.a == 1', {"caller": {"name"}, "crm": {"a"}}),
        ('r"\\" == crm.b', {"crm": {"b"}}),
        ('"""crm.q\n""" == crm.z', {"crm": {"z"}}),
        # a macro variable named like one of ours takes the whole value
        ("intent.signals.exists(crm, crm.source == 'x')", {"intent": {"signals"}, "crm": None}),
    ],
)
def test_field_reads(source: str, expected: dict[str, set[str] | None]) -> None:
    compiled = compile_expression(source, known_variables=None)
    reads = field_reads(source, compiled.variables)
    found = {name: (None if fields is None else set(fields)) for name, fields in reads.items()}
    ours = {name: f for name, f in found.items() if name in CEL_VARIABLES and f != set()}
    assert ours == expected


WIDE_CRM = {f"field_{i}": i for i in range(30)} | {"tier": "vip", "nested": {"a": 1}}
PROJECTION_CASES = [
    'crm.tier == "vip"',
    "has(crm.missing) || crm.field_3 == 3",
    "crm.missing == 1",
    "size(crm) == 32",
    'crm["field_7"] == 7',
    "crm.nested.a == 1 && crm.field_29 == 29",
    'journey != null && journey.campaign == "spring"',
    "journey == null",
    "journey.campaign == 'spring'",
    "has(journey.campaign)",
    "queues.sales.waiting > 5",
    'crm.exists(k, k == "tier")',
    "intent.signals.size() == 0 && intent.name == 'unknown'",
]
PROJECTION_CONTEXTS = [
    VIP | {"crm": WIDE_CRM},
    PLAIN,
    PLAIN | {"journey": None, "crm": WIDE_CRM},
]


def _outcome(source: str, bindings: Bindings) -> object:
    try:
        return compile_expression(source).evaluate(bindings)
    except ExpressionError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("source", PROJECTION_CASES)
@pytest.mark.parametrize("variables", PROJECTION_CONTEXTS)
def test_projected_binding_gives_the_same_outcome(source: str, variables: dict[str, Any]) -> None:
    projection = compile_expression(source).projection
    projected = _outcome(source, Bindings(variables, projection))
    whole = _outcome(source, Bindings(variables))
    assert projected == whole


class RecordingVariables(Mapping[str, Any]):
    """A real mapping that records which variables were read."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def test_bindings_convert_each_variable_once_and_only_when_read() -> None:
    variables = RecordingVariables(VIP)
    bindings = Bindings(variables)
    assert compile_expression('crm.tier == "vip"').evaluate(bindings) is True
    assert compile_expression("crm.ltv > 10 && intent.confidence > 0.5").evaluate(bindings)
    assert variables.read == ["crm", "intent"]


def test_known_variables_match_call_context() -> None:
    assert set(context().cel_vars()) == CEL_VARIABLES
