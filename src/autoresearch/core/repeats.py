"""Whether a proposal's code was trained before: two train.py files are the same experiment when
their token streams agree once comments and blank lines are dropped (a reworded comment, a blank
line or a trailing space changes nothing Python runs; a renamed variable or a changed literal
does). A file that does not tokenize is compared on its lines, stripped, without blank and comment lines."""

from __future__ import annotations

import hashlib
import io
import tokenize

REPEAT = "the same code as iteration"  # how a repeat's reason starts
_SKIPPED = (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING)


def code_key(source: str) -> str:
    """A digest of what Python runs of source: its tokens, without comments and blank lines."""
    try:
        tokens = [
            f"{tok.type}:{tok.string}"
            for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type not in _SKIPPED
        ]
    except (tokenize.TokenError, SyntaxError, ValueError):  # SyntaxError: a bad dedent
        lines = (line.strip() for line in source.splitlines())
        tokens = [line for line in lines if line and not line.startswith("#")]
    return hashlib.sha256("\n".join(tokens).encode("utf-8", "surrogatepass")).hexdigest()


def repeat_reason(earlier: int, training: bool = False) -> str:
    """The reason a repeat is recorded with, naming the experiment it repeats."""
    if training:
        return f"{REPEAT} {earlier}, which is training now: not trained again"
    return (
        f"{REPEAT} {earlier} (comments and blank lines aside): not trained; "
        f"its result is iteration {earlier}'s"
    )
