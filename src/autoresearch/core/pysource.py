"""Python source that may be hostile (an agent's train.py): parsed and compiled without letting a
deeply nested file raise past the caller, and decoded only where storing it as text keeps it.

CPython's parser and compiler recurse on nesting: `1+1+...` with 300,000 terms raises
RecursionError, a long chain of unary minuses or lambdas MemoryError ("parser stack overflow").
Here both become a SyntaxError, which every caller already handles as "not valid Python"."""

from __future__ import annotations

import ast
import codecs
import io
import tokenize

TOO_DEEP = (RecursionError, MemoryError)  # what nesting makes the parser or compiler raise


def _too_deep(err: BaseException, filename: str) -> SyntaxError:
    return SyntaxError(
        f"nested too deeply for Python to compile ({type(err).__name__})",
        (filename, None, None, None),
    )


def parse(source: str | bytes, filename: str = "<train.py>") -> ast.Module:
    """ast.parse, raising SyntaxError for anything the source makes it raise."""
    try:
        return ast.parse(source, filename)
    except TOO_DEEP as err:
        raise _too_deep(err, filename) from None
    except ValueError as err:  # null bytes, on Python 3.11
        raise SyntaxError(str(err), (filename, None, None, None)) from None


def literal(source: str) -> object:
    """ast.literal_eval of a string: ValueError or SyntaxError for anything it raises."""
    try:
        return ast.literal_eval(source)
    except TOO_DEEP as err:
        raise ValueError(f"nested too deeply ({type(err).__name__})") from None


def check_compiles(source: str | bytes, filename: str = "<train.py>") -> None:
    """compile() as Python runs a script, raising SyntaxError for anything it makes it raise."""
    try:
        compile(source, filename, "exec", dont_inherit=True)
    except TOO_DEEP as err:
        raise _too_deep(err, filename) from None
    except ValueError as err:  # null bytes, on Python 3.11
        raise SyntaxError(str(err), (filename, None, None, None)) from None


def text(data: bytes, name: str = "train.py") -> str:
    """The file's text, where storing it as UTF-8 gives Python the same program: UTF-8 bytes
    (a BOM dropped) under no coding line or a UTF-8 one, or ASCII under any coding line.
    ValueError (one line) otherwise: decoded by its coding line and stored as UTF-8, a latin-1
    file would be trained altered, so it is refused rather than changed."""
    try:
        declared, problem = tokenize.detect_encoding(io.BytesIO(data).readline)[0], ""
    except SyntaxError as err:  # an unknown encoding, a BOM under another coding line, ...
        declared, problem = "", err.msg
    utf8 = not declared or codecs.lookup(declared).name in ("utf-8", "utf-8-sig")
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        coding = "" if utf8 else f", its coding line says {declared}"
        raise ValueError(
            f"{name} is not UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}{coding}); "
            "autoresearch keeps train.py as UTF-8: save it as UTF-8 without a coding line"
        ) from None
    if problem:
        raise ValueError(f"{name}: {problem}; save it as UTF-8")
    if not utf8 and not data.isascii():
        raise ValueError(
            f"{name}'s coding line says {declared}, but autoresearch keeps train.py as UTF-8: "
            "save it as UTF-8 without a coding line"
        )
    return decoded
