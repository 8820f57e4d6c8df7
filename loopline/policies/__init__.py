"""The routing language and strategies: CEL policies over the call context, pure functions.

Compile once with `PolicySet.compile(policies, default)`; per call, `decide(...)` matches the
first policy, applies the route's relaxation step for the wait so far and ranks the eligible
agents by the route's strategy.
"""

from loopline.policies.cel import (
    CEL_VARIABLES,
    ENGINE,
    Bindings,
    CompiledExpression,
    ExpressionError,
    compile_expression,
)
from loopline.policies.decide import decide, explain
from loopline.policies.eligibility import eligible
from loopline.policies.policy_set import (
    DEFAULT_POLICY,
    Match,
    PolicyError,
    PolicyFailure,
    PolicySet,
)
from loopline.policies.ranking import CANDIDATE_LIMIT, REJECT_LIMIT, Ranking, rank
from loopline.policies.requirements import Requirements, requirements_at
from loopline.policies.strategies import SCORERS, Ranked, RankFacts, order

__all__ = [
    "CANDIDATE_LIMIT",
    "CEL_VARIABLES",
    "DEFAULT_POLICY",
    "ENGINE",
    "REJECT_LIMIT",
    "SCORERS",
    "Bindings",
    "CompiledExpression",
    "ExpressionError",
    "Match",
    "PolicyError",
    "PolicyFailure",
    "PolicySet",
    "RankFacts",
    "Ranked",
    "Ranking",
    "Requirements",
    "compile_expression",
    "decide",
    "eligible",
    "explain",
    "order",
    "rank",
    "requirements_at",
]
