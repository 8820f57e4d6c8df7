"""Two CEL engines measured on Loopline's own rules: `common-expression-language` (import `cel`,
Rust) and `cel-python` (import `celpy`, pure Python).

For each engine: compile time per expression, the cost of binding one call's variables,
evaluation time per expression over those bound variables, results on a table of expressions
with known answers, and the error message for each of a set of broken rules.

Run: `python -m bench.bench_cel` (writes bench/results/cel_engines.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import cel
import celpy

from bench.samples import sample_context
from loopline.domain import (
    CallContext,
    QueueStats,
    TimeFacts,
)

RESULTS = Path(__file__).parent / "results" / "cel_engines.json"
ERROR = "error"  # the expected outcome of an expression that must fail at evaluation


def realistic_context() -> CallContext:
    return sample_context(
        crm={"tier": "vip", "score": 1},  # score: an int where a rule compares with a double
        time=TimeFacts(hour=10, weekday=0, in_business_hours=False, iso="2026-01-05T10:00:00Z"),
        queues={
            "sales": QueueStats(waiting=7, longest_wait_s=95.0, agents_available=1),
            "support": QueueStats(waiting=2, longest_wait_s=12.0, agents_available=4),
        },
    )


def contexts() -> dict[str, dict[str, Any]]:
    """Named variants of the realistic context, as CEL variables."""
    base = realistic_context()
    no_churn = base.model_copy(
        update={"crm": {k: v for k, v in base.crm.items() if k != "churn_risk"}}
    )
    gold = base.model_copy(update={"crm": {**base.crm, "tier": "gold"}})
    anonymous = base.model_copy(update={"journey": None})
    return {
        "vip": base.cel_vars(),
        "no_churn": no_churn.cel_vars(),
        "gold": gold.cel_vars(),
        "no_journey": anonymous.cel_vars(),
    }


# (expression, context variant, expected result, or ERROR when evaluation must fail)
TABLE: list[tuple[str, str, Any]] = [
    ('crm.tier == "vip"', "vip", True),
    ('crm.tier == "vip"', "gold", False),
    ('intent.name == "cancel" && intent.confidence > 0.6', "vip", True),
    ('caller.region in ["CA", "NY"]', "vip", True),
    ("has(crm.churn_risk) && crm.churn_risk > 0.7", "vip", True),
    ("has(crm.churn_risk) && crm.churn_risk > 0.7", "no_churn", False),
    ('journey != null && journey.campaign == "spring"', "vip", True),
    ('journey != null && journey.campaign == "spring"', "no_journey", False),
    ("time.hour >= 9 && !time.in_business_hours", "vip", True),
    ("queues.sales.waiting > 5", "vip", True),
    # missing keys and nulls: an error, which the policy set counts as no match
    ("crm.churn_risk > 0.7", "no_churn", ERROR),
    ("queues.billing.waiting > 5", "vip", ERROR),
    ('journey.campaign == "spring"', "no_journey", ERROR),
    # an error on one side of || or && is absorbed when the other side decides (CEL spec)
    ('crm.tier == "vip" || crm.churn_risk > 0.7', "no_churn", True),
    ('crm.churn_risk > 0.7 || crm.tier == "vip"', "no_churn", True),
    ('crm.churn_risk > 0.7 && crm.tier == "platinum"', "no_churn", False),
    # numbers: JSON gives ints and doubles as they come; CEL compares across them
    ("crm.score > 0.7", "vip", True),
    ("time.hour > 8.5", "vip", True),
    ("crm.ltv > 1000", "vip", True),
    ("double(crm.ltv) / 2.0 > 1000.0", "vip", True),
    # strings, lists, macros, regexes, timestamps, null fields
    ('crm.account.startsWith("A-")', "vip", True),
    ('caller.number.matches("^\\\\+1415")', "vip", True),
    ('intent.signals.exists(s, s.source == "journey" && s.weight > 1.0)', "vip", True),
    ("size(journey.pages) > 2", "vip", True),
    ('"/account/cancel" in journey.pages', "vip", True),
    ("caller.name == null", "vip", True),
    ("time.weekday in [5, 6]", "vip", False),
    ('timestamp(time.iso) > timestamp("2026-01-01T00:00:00Z")', "vip", True),
    ('call.campaign == "spring" ? queues.sales.waiting > 5 : false', "vip", True),
    ("crm.tier", "vip", "vip"),  # not a bool: the policy layer rejects it, the engine need not
]

# Broken rules: only the message matters, to compare how well each engine explains itself.
BROKEN: list[tuple[str, str, str]] = [
    ("syntax: dangling operator", "crm.tier ==", "vip"),
    ("syntax: = for ==", 'crm.tier = "vip"', "vip"),
    ("syntax: &&&", 'intent.name == "cancel" &&& true', "vip"),
    ("missing key", "crm.churn_risk > 0.7", "no_churn"),
    ("field of null", 'journey.campaign == "spring"', "no_journey"),
    ("type mismatch", "crm.tier > 5", "vip"),
    ("unknown variable", "foo == 1", "vip"),
    ("unknown function", 'lower(crm.tier) == "vip"', "vip"),
    ("size of null", "size(caller.name) > 0", "vip"),
]


class Engine(Protocol):
    name: str
    module: str
    version: str

    def compile(self, source: str) -> Any: ...

    def bind(self, variables: dict[str, Any]) -> Any: ...

    def run(self, program: Any, bound: Any) -> Any: ...


class RustCel:
    name = "common-expression-language"
    module = "cel"

    def __init__(self) -> None:
        self.version = metadata.version("common-expression-language")

    def compile(self, source: str) -> Any:
        return cel.compile(source)

    def bind(self, variables: dict[str, Any]) -> Any:
        return cel.Context(variables)

    def run(self, program: Any, bound: Any) -> Any:
        return program.execute(bound)


class PythonCel:
    name = "cel-python"
    module = "celpy"

    def __init__(self) -> None:
        self.version = metadata.version("cel-python")
        self._env = celpy.Environment()

    def compile(self, source: str) -> Any:
        return self._env.program(self._env.compile(source))

    def bind(self, variables: dict[str, Any]) -> Any:
        return {name: celpy.json_to_cel(value) for name, value in variables.items()}  # type: ignore[attr-defined]

    def run(self, program: Any, bound: Any) -> Any:
        result = program.evaluate(bound)
        # celpy may return an error as a value rather than raise it.
        if isinstance(result, celpy.CELEvalError):  # type: ignore[attr-defined]
            raise result
        return result


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50": round(samples[len(samples) // 2], 2),
        "p99": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
        "mean": round(statistics.fmean(samples), 2),
    }


def _time_us(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, bool):
        return isinstance(got, bool | int) and bool(got) is expected and got == expected
    return bool(got == expected)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:400]


def measure(engine: Engine, variants: dict[str, dict[str, Any]], repeat: int) -> dict[str, Any]:
    bound = {name: engine.bind(values) for name, values in variants.items()}
    table: list[dict[str, Any]] = []
    wrong = 0
    compile_us: list[float] = []
    eval_us: list[float] = []
    for source, variant, expected in TABLE:
        row: dict[str, Any] = {"expression": source, "context": variant, "expected": expected}
        try:
            program = engine.compile(source)
        except Exception as exc:
            row.update(ok=False, got=f"compile failed: {_one_line(exc)}")
            wrong += 1
            table.append(row)
            continue
        compile_us += _time_us(partial(engine.compile, source), max(5, repeat // 20))
        try:
            got: Any = engine.run(program, bound[variant])
            row["got"] = got if isinstance(got, bool | int | float | str) else str(got)
            ok = expected is not ERROR and _same(got, expected)
        except Exception as exc:
            row["got"] = f"error: {_one_line(exc)}"
            ok = expected is ERROR
        else:
            eval_us += _time_us(partial(engine.run, program, bound[variant]), repeat)
        row["ok"] = ok
        wrong += not ok
        table.append(row)

    messages = {}
    for label, source, variant in BROKEN:
        try:
            engine.run(engine.compile(source), bound[variant])
            messages[label] = {"expression": source, "message": "(no error raised)"}
        except Exception as exc:
            messages[label] = {"expression": source, "message": _one_line(exc)}

    realistic = variants["vip"]
    bind_us = _time_us(lambda: engine.bind(realistic), max(20, repeat // 5))
    return {
        "engine": engine.name,
        "import": engine.module,
        "version": engine.version,
        "compile_us": _percentiles(compile_us),
        "eval_us": _percentiles(eval_us),
        "bind_us": _percentiles(bind_us),
        "table_size": len(TABLE),
        "errors_on_table": wrong,
        "wrong": [row for row in table if not row["ok"]],
        "table": table,
        "error_messages": messages,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=400, help="evaluations per expression")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    variants = contexts()
    engines: list[Engine] = [RustCel(), PythonCel()]
    results = {engine.name: measure(engine, variants, args.repeat) for engine in engines}
    report = {
        "benchmark": "cel engines",
        "command": "python -m bench.bench_cel",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "notes": (
            "compile_us: one expression to a reusable program. bind_us: one call's variables "
            "(CallContext.cel_vars()) to engine values. eval_us: one expression over bound "
            "variables. errors_on_table: expressions whose result differs from the expected "
            "one (an error where a value was expected, or the reverse)."
        ),
        "chosen": "common-expression-language",
        "engines": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    for name, result in results.items():
        print(
            f"{name:28s} compile p50 {result['compile_us']['p50']:8.1f} us"
            f"  bind p50 {result['bind_us']['p50']:8.1f} us"
            f"  eval p50 {result['eval_us']['p50']:7.2f} us p99 {result['eval_us']['p99']:7.2f} us"
            f"  errors on table {result['errors_on_table']}/{result['table_size']}"
        )
        for row in result["wrong"]:
            print(f"    wrong: {row['expression']!r} [{row['context']}] -> {row['got']}")
    return report


if __name__ == "__main__":
    main()
