"""Ordered routing policies, compiled once: the first whose `when` is true routes the call."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from loopline.domain.routing import Policy, Route
from loopline.policies.cel import (
    CEL_VARIABLES,
    ENGINE,
    Bindings,
    CompiledExpression,
    ExpressionError,
    Projection,
    compile_expression,
)
from loopline.policies.memo import RankMemo

DEFAULT_POLICY = "default"


class PolicyError(ValueError):
    """A policy set cannot be loaded; the message names the policy at fault."""


@dataclass(frozen=True, slots=True)
class PolicyFailure:
    """A policy whose `when` raised or gave a non-bool for one call: it did not match."""

    policy: str
    expression: str
    error: str


@dataclass(frozen=True, slots=True)
class Match:
    policy: str  # the policy name, or "default"
    expression: str | None  # the `when` that matched; None for the default route
    route: Route
    failures: tuple[PolicyFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class _Rule:
    policy: Policy
    expression: CompiledExpression


class PolicySet:
    """Build with `PolicySet.compile`; `match` evaluates in order and never raises."""

    __slots__ = ("_default", "_projection", "_rules", "memo")

    def __init__(self, rules: Sequence[_Rule], default: Route) -> None:
        self._rules = tuple(rules)
        self._default = default
        self._projection = _merge_projections(rule.expression.projection for rule in rules)
        # What `decide` works out per agent from configuration alone, for this policy set.
        self.memo = RankMemo()

    @classmethod
    def compile(
        cls,
        policies: Sequence[Policy],
        default: Route,
        *,
        known_variables: Collection[str] | None = CEL_VARIABLES,
    ) -> PolicySet:
        """Compile every `when`; raises `PolicyError` naming the first policy that fails."""
        rules: list[_Rule] = []
        seen: set[str] = set()
        for policy in policies:
            if policy.name in seen:
                raise PolicyError(f"policy {policy.name!r} is defined twice")
            seen.add(policy.name)
            try:
                expression = compile_expression(policy.when, known_variables)
            except ExpressionError as exc:
                raise PolicyError(
                    f"policy {policy.name!r}: `{policy.when}` does not compile ({ENGINE}): {exc}"
                ) from exc
            rules.append(_Rule(policy, expression))
        return cls(rules, default)

    @property
    def policies(self) -> tuple[Policy, ...]:
        return tuple(rule.policy for rule in self._rules)

    @property
    def default(self) -> Route:
        return self._default

    @property
    def projection(self) -> Projection:
        """Per variable, the fields any rule reads (None: the whole value)."""
        return self._projection

    def __len__(self) -> int:
        return len(self._rules)

    def match(self, values: Mapping[str, Any]) -> Match:
        """The first policy whose `when` is true for these CEL variables, else the default.

        A rule that raises or gives a non-bool does not match and is listed in `failures`.
        """
        bindings = Bindings(values, self._projection)
        failures: list[PolicyFailure] = []
        for rule in self._rules:
            try:
                matched = rule.expression.evaluate(bindings)
            except ExpressionError as exc:
                failures.append(PolicyFailure(rule.policy.name, rule.policy.when, str(exc)))
                continue
            if matched:
                return Match(rule.policy.name, rule.policy.when, rule.policy.route, tuple(failures))
        return Match(DEFAULT_POLICY, None, self._default, tuple(failures))


def _merge_projections(projections: Iterable[Projection]) -> Projection:
    merged: dict[str, frozenset[str] | None] = {}
    for projection in projections:
        for name, fields in projection.items():
            if name in merged:
                known = merged[name]
                merged[name] = None if known is None or fields is None else known | fields
            else:
                merged[name] = fields
    return MappingProxyType(merged)
