"""CEL behind one small interface: compile once, then `evaluate(vars) -> bool` per call.

The engine is `common-expression-language` (import `cel`, Rust). It was chosen over
`cel-python` by measurement (`python -m bench.bench_cel`, figures in
`bench/results/cel_engines.json`): evaluating a rule takes under a microsecond against about
200 (cel-python), compiling is seven to ten times faster, and it got our whole expression
table right where cel-python failed three rules: `journey != null` on a present journey, and
int against double (`crm.score > 0.7` when the CRM sent an int, `time.hour > 8.5`), which
current CEL allows. Its syntax errors carry the position and what was expected; its one weak
spot, slow conversion of Python values, is why `Bindings` converts lazily and only the fields
rules read. Nothing outside this module imports the engine.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import cel

ENGINE = "common-expression-language"

# The variables `CallContext.cel_vars()` provides.
CEL_VARIABLES: frozenset[str] = frozenset(
    {"call", "caller", "crm", "intent", "journey", "time", "queues"}
)

# Macros bind a name of their own (`signals.exists(s, s.weight > 1)`); the engine lists that
# name among the expression's variables, so it must not count as an unknown variable.
_MACRO_BINDING = re.compile(
    r"\.\s*(?:all|exists_one|exists|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_STRING_PREFIXES = frozenset("rRbB")
# Per variable, the fields its expressions read (`crm.tier` -> {"tier"}); None: the whole value.
Projection = Mapping[str, frozenset[str] | None]


class ExpressionError(Exception):
    """An expression does not compile, or did not evaluate to a bool for these variables."""


class Bindings:
    """One call's variables, converted to engine values once and only when an expression reads
    them.

    Converting a Python dict to engine values costs microseconds per field, far more than
    evaluating a rule, so a policy set shares one `Bindings` across all its expressions and a
    variable no evaluated rule reads is never converted.

    With a projection, a variable that expressions only read as `var.field` is converted with
    just those fields: a CRM record of fifty fields costs only the two fields the rules read.
    The projection must therefore cover every expression evaluated with these bindings
    (`PolicySet` merges its rules' projections for that).
    """

    __slots__ = ("_bound", "_context", "_projection", "_values")

    def __init__(self, values: Mapping[str, Any], projection: Projection | None = None) -> None:
        self._values = values
        self._projection: Projection = projection or {}
        self._context = cel.Context()
        self._bound: set[str] = set()

    def engine_context(self, names: tuple[str, ...]) -> cel.Context:
        for name in names:
            if name in self._bound:
                continue
            # Marked first: a name the call lacks (or a macro's own variable) is looked up once.
            self._bound.add(name)
            try:
                value = self._values[name]
            except KeyError:
                continue
            fields = self._projection.get(name)
            if fields is not None and isinstance(value, Mapping):
                value = {key: value[key] for key in fields if key in value}
            try:
                self._context.add_variable(name, value)
            except Exception:
                self._bound.discard(name)  # every rule that reads it fails the same way
                raise
        return self._context


class CompiledExpression:
    """A compiled CEL expression; evaluating it never compiles again."""

    __slots__ = ("_program", "projection", "source", "variables")

    def __init__(
        self,
        source: str,
        program: cel.Program,
        variables: tuple[str, ...],
        projection: Projection,
    ) -> None:
        self.source = source
        self._program = program
        self.variables = variables
        self.projection = projection

    def evaluate(self, values: Mapping[str, Any] | Bindings) -> bool:
        """True or False; raises `ExpressionError` on an evaluation error or a non-bool."""
        bindings = values if isinstance(values, Bindings) else Bindings(values, self.projection)
        try:
            result = self._program.execute(bindings.engine_context(self.variables))
        except Exception as exc:  # the engine raises KeyError, TypeError, RuntimeError, ...
            raise ExpressionError(describe_engine_error(exc)) from exc
        if not isinstance(result, bool):
            raise ExpressionError(
                f"evaluated to {type(result).__name__} {_preview(result)}, not a bool"
            )
        return result

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"


def compile_expression(
    source: str, known_variables: Collection[str] | None = CEL_VARIABLES
) -> CompiledExpression:
    """Compile `source`; with `known_variables`, a name outside them is an error now rather
    than a rule that silently never matches."""
    try:
        program = cel.compile(source)
    except Exception as exc:
        raise ExpressionError(describe_engine_error(exc)) from exc
    variables = tuple(program.variables())
    if known_variables is not None:
        bound = set(_MACRO_BINDING.findall(source))
        unknown = sorted(v for v in variables if v not in known_variables and v not in bound)
        if unknown:
            known = ", ".join(sorted(known_variables))
            raise ExpressionError(f"unknown variable {', '.join(unknown)}; known: {known}")
    return CompiledExpression(source, program, variables, field_reads(source, variables))


def field_reads(source: str, variables: Collection[str]) -> dict[str, frozenset[str] | None]:
    """For each variable, the fields `source` reads from it as `var.field`; None when it uses
    the variable any other way (`crm["tier"]`, `size(crm)`, `crm.exists(k, ...)`, a macro
    binding of the same name...), and then the whole value must be bound.

    `source` must already have compiled: this scans it, it does not parse it.
    """
    reads: dict[str, set[str] | None] = {name: set() for name in variables}
    code = _blank_strings(source)
    length = len(code)
    i = 0
    while i < length:
        if code[i] not in _IDENTIFIER_CHARS:
            i += 1
            continue
        start = i
        while i < length and code[i] in _IDENTIFIER_CHARS:
            i += 1
        name = code[start:i]
        if name not in reads or _after_dot(code, start):
            continue  # not one of ours, or a field of something else (`x.crm`)
        fields = reads[name]
        j = _skip_space(code, i)
        if j < length and code[j] == ".":
            k = _skip_space(code, j + 1)
            end = k
            while end < length and code[end] in _IDENTIFIER_CHARS:
                end += 1
            call = _skip_space(code, end)
            if end > k and not (call < length and code[call] == "("):
                if fields is not None:
                    fields.add(code[k:end])
                continue
        if _null_test(code, start, i):
            continue  # `journey != null` holds for the projected value as for the whole
        reads[name] = None
    return {name: None if f is None else frozenset(f) for name, f in reads.items()}


def _blank_strings(source: str) -> str:
    """`source` with every string and bytes literal emptied, so text inside quotes is never
    taken for a variable. Follows CEL's lexer: raw literals (r"...") have no escapes and
    end at the first closing quote; triple-quoted ones may hold newlines."""
    out: list[str] = []
    i, length = 0, len(source)
    while i < length:
        char = source[i]
        if char not in "\"'":
            out.append(char)
            i += 1
            continue
        prefix_start = len(out)
        while prefix_start > 0 and out[prefix_start - 1] in _STRING_PREFIXES:
            prefix_start -= 1
        prefix = "".join(out[prefix_start:])
        raw = "r" in prefix.lower() and (
            prefix_start == 0 or out[prefix_start - 1] not in _IDENTIFIER_CHARS
        )
        quote = char * 3 if source.startswith(char * 3, i) else char
        i += len(quote)
        while i < length and not source.startswith(quote, i):
            i += 2 if source[i] == "\\" and not raw else 1
        i += len(quote)
        out.append(quote * 2)
    return "".join(out)


_NULL_AFTER = re.compile(r"\s*[!=]=\s*null(?![A-Za-z0-9_])")
_NULL_BEFORE = re.compile(r"(?<![A-Za-z0-9_.])null\s*[!=]=\s*$")
# Characters that may stand next to `x == null` without binding tighter than `==` does.
_OPENS = frozenset("(&|?:,[")
_CLOSES = frozenset(")&|?:,]")


def _null_test(code: str, start: int, end: int) -> bool:
    """Whether the identifier at code[start:end] is only compared with null (`x != null`)."""
    after = _NULL_AFTER.match(code, end)
    if after is not None:
        return _opens(code, start) and _closes(code, after.end())
    before = _NULL_BEFORE.search(code, 0, start)
    return before is not None and _opens(code, before.start()) and _closes(code, end)


def _opens(code: str, i: int) -> bool:
    j = i - 1
    while j >= 0 and code[j].isspace():
        j -= 1
    return j < 0 or code[j] in _OPENS


def _closes(code: str, i: int) -> bool:
    j = _skip_space(code, i)
    return j >= len(code) or code[j] in _CLOSES


def _after_dot(code: str, start: int) -> bool:
    j = start - 1
    while j >= 0 and code[j].isspace():
        j -= 1
    return j >= 0 and code[j] == "."


def _skip_space(code: str, i: int) -> int:
    while i < len(code) and code[i].isspace():
        i += 1
    return i


def describe_engine_error(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        # The engine's KeyError carries the bare key: say what it means.
        return f"no such key {exc.args[0]!r}" if exc.args else "no such key"
    text = str(exc).strip()
    if isinstance(exc, TypeError | RuntimeError):
        # Evaluation errors go into decision reasons: keep the engine's first sentence, not
        # its paragraph of advice.
        text = text.split(". ", 1)[0]
    return text or type(exc).__name__


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
