"""The hyperparameter block of a train.py: parse it, rewrite its values.

    # --- hyperparameters (autoresearch: hpo) ---
    LEARNING_RATE = 0.1  # float[1e-4, 1.0] log
    BATCH_SIZE = 32  # int[16, 1024] log
    OPTIMIZER = "sgd"  # choice["sgd", "adam", "adamw"]
    # --- end hyperparameters ---

Each line is `NAME = <python literal>  # <spec>`, the spec one of `float[lo, hi]`,
`int[lo, hi]` (either with a trailing `log`) or `choice[<literals>]`. Blank lines and
comment-only lines inside the block are allowed and left alone.

A current value must have the spec's type (a number for float, an int for int, a str, int,
float or bool for choice) but may lie outside the range or the choices: it is only a starting
point, and the search keeps to the spec. `Param.contains` tells whether a value fits.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

from autoresearch.core import pysource

START = "# --- hyperparameters (autoresearch: hpo) ---"
END = "# --- end hyperparameters ---"
EXAMPLE = "LEARNING_RATE = 0.1  # float[1e-4, 1.0] log"

Value = str | int | float | bool

_NUMERIC_SPEC = re.compile(r"#\s*(float|int)\[(.*)\]\s*(log)?\s*")
_CHOICE_SPEC = re.compile(r"#\s*choice\[(.*)\]\s*")
_GRAMMAR = "NAME = value  # float[lo, hi] [log] | int[lo, hi] [log] | choice[a, b, ...]"


class HpoBlockError(Exception):
    """A missing or malformed hyperparameter block: one line for the user."""


class NoBlockError(HpoBlockError):
    """The source has no hyperparameter block at all."""


Fail = Callable[[str], HpoBlockError]  # builds the error for the line being parsed


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its current value and the space it is searched in."""

    name: str
    value: Value
    kind: str  # "float" | "int" | "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Value, ...] = ()
    line: int = 0  # 1-based line number in the source
    span: tuple[int, int] = (0, 0)  # columns of the value's text in that line

    @property
    def spec(self) -> str:
        if self.kind == "choice":
            return f"choice[{', '.join(format_value(c) for c in self.choices)}]"
        return f"{self.kind}[{self.low}, {self.high}]" + (" log" if self.log else "")

    def contains(self, value: object) -> bool:
        """Whether value is a legal point of this parameter's space."""
        if self.kind == "choice":
            return any(same(value, choice) for choice in self.choices)
        if not _is_number(value) or (self.kind == "int" and not isinstance(value, int)):
            return False
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Block:
    params: tuple[Param, ...]
    start: int  # 1-based line numbers of the two markers
    end: int

    def values(self) -> dict[str, Value]:
        return {p.name: p.value for p in self.params}


def same(a: object, b: object) -> bool:
    """Equality that tells True from 1 and 1 from 1.0, as choices need."""
    return type(a) is type(b) and a == b


def format_value(value: Value) -> str:
    """Python source for a value: shortest exact repr; strings in double quotes when possible."""
    if isinstance(value, str) and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return repr(value)


def parse_block(source: str) -> Block:
    """The block of a train.py source. Raises HpoBlockError saying what is wrong and where."""
    lines = source.splitlines()
    starts = [n for n, line in enumerate(lines, 1) if line.strip() == START]
    ends = [n for n, line in enumerate(lines, 1) if line.strip() == END]
    if not starts:
        raise NoBlockError(f"no '{START}' line")
    if len(starts) > 1:
        raise HpoBlockError(f"lines {starts[0]} and {starts[1]}: more than one '{START}'")
    start = starts[0]
    end = next((n for n in ends if n > start), None)
    if end is None:
        raise HpoBlockError(f"line {start}: the block is never closed by '{END}'")
    params: list[Param] = []
    for number in range(start + 1, end):
        line = lines[number - 1]
        if not line.strip() or line.strip().startswith("#"):
            continue
        param = _parse_line(line, number)
        if any(p.name == param.name for p in params):
            raise HpoBlockError(
                f"line {number}: {param.name} is declared twice (got: {line.strip()})"
            )
        params.append(param)
    if not params:
        raise HpoBlockError(f"lines {start}-{end}: the block declares no hyperparameters")
    return Block(tuple(params), start, end)


def rewrite_block(source: str, values: dict[str, Value]) -> str:
    """The source with the named block values replaced; every other character is kept."""
    block = parse_block(source)
    by_name = {p.name: p for p in block.params}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise HpoBlockError(f"not in the block: {', '.join(unknown)}")
    lines = source.splitlines(keepends=True)
    for name, value in values.items():
        param = by_name[name]
        line = lines[param.line - 1]
        lo, hi = param.span
        lines[param.line - 1] = line[:lo] + format_value(value) + line[hi:]
    return "".join(lines)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_line(line: str, number: int) -> Param:
    def fail(reason: str) -> HpoBlockError:
        return HpoBlockError(f"line {number}: {reason} (got: {line.strip()})")

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):
        raise fail(f"expected {_GRAMMAR}") from None
    comment = next((t for t in tokens if t.type == tokenize.COMMENT), None)
    if comment is None:
        raise fail(f"no spec comment; expected {_GRAMMAR}")
    code = line[: comment.start[1]]
    try:
        statements = pysource.parse(code).body
    except SyntaxError:
        raise fail(f"expected {_GRAMMAR}") from None
    if not (
        len(statements) == 1
        and isinstance(statements[0], ast.Assign)
        and len(statements[0].targets) == 1
        and isinstance(statements[0].targets[0], ast.Name)
    ):
        raise fail(f"expected {_GRAMMAR}")
    try:
        value = ast.literal_eval(statements[0].value)
    except (ValueError, *pysource.TOO_DEEP):
        raise fail("the value is not a Python literal") from None
    name = statements[0].targets[0].id
    equals = code.index("=") + 1
    after = code[equals:]
    span = (equals + len(after) - len(after.lstrip()), len(code.rstrip()))
    spec = comment.string
    if m := _NUMERIC_SPEC.fullmatch(spec):
        return _numeric(name, value, m, number, span, fail)
    if m := _CHOICE_SPEC.fullmatch(spec):
        return _choice(name, value, m.group(1), number, span, fail)
    raise fail(f"unknown spec {spec!r}; expected {_GRAMMAR}")


def _numeric(
    name: str, value: object, match: re.Match, number: int, span: tuple[int, int], fail: Fail
) -> Param:
    kind, inner, log = match.group(1), match.group(2), match.group(3) is not None
    try:
        bounds = pysource.literal(f"[{inner}]")
    except (ValueError, SyntaxError):
        raise fail(f"{kind}[...] needs two numbers") from None
    wanted = int if kind == "int" else int | float
    if len(bounds) != 2 or not all(_is_number(b) and isinstance(b, wanted) for b in bounds):
        raise fail(f"{kind}[...] needs two {'integers' if kind == 'int' else 'numbers'}")
    low, high = bounds
    if low >= high:
        raise fail(f"the low bound {low} is not below the high bound {high}")
    if log and low <= 0:
        raise fail("a log scale needs a positive low bound")
    if not _is_number(value) or not isinstance(value, wanted):
        raise fail(f"the value {value!r} is not {'an integer' if kind == 'int' else 'a number'}")
    return Param(name, value, kind, low, high, log, line=number, span=span)


def _choice(
    name: str, value: object, inner: str, number: int, span: tuple[int, int], fail: Fail
) -> Param:
    try:
        choices = pysource.literal(f"[{inner}]")
    except (ValueError, SyntaxError):
        raise fail("choice[...] needs Python literals separated by commas") from None
    if not choices:
        raise fail("choice[...] is empty")
    if not all(isinstance(c, Value) for c in choices + [value]):
        raise fail("choices and the value must be str, int, float or bool")
    if any(a == b for i, a in enumerate(choices) for b in choices[i + 1 :]):
        raise fail("choice[...] lists equal values twice (note True == 1 and 1 == 1.0)")
    return Param(name, value, "choice", choices=tuple(choices), line=number, span=span)
