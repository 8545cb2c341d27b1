"""The one check every proposal passes before training: compile(), and one rule for "unchanged"."""

from __future__ import annotations

import re

import pytest

from autoresearch.agents.base import Proposal
from autoresearch.agents.validate import check_proposal, code_problem, unchanged
from autoresearch.core import pysource

OLD = """import torch

LR = 0.01
EPOCHS = 3


def train():
    for epoch in range(EPOCHS):
        print(epoch, LR)
"""


def test_a_real_change_passes():
    assert code_problem(OLD.replace("0.01", "0.1"), OLD) is None
    assert check_proposal(Proposal(OLD.replace("0.01", "0.1")), OLD) is None


def test_a_syntax_error_names_its_line_and_shows_it():
    problem = code_problem("x = 1\ndef f(:\n    pass\n", OLD)
    assert problem.startswith("the new train.py is not valid Python: line 2: ")
    assert problem.splitlines()[1] == "    def f(:"
    # the stored reason is the first line only
    reason = check_proposal(Proposal("x = 1\ndef f(:\n    pass\n"), OLD)
    assert reason.startswith("the new train.py is not valid Python: line 2") and "\n" not in reason


@pytest.mark.parametrize(
    "code, message",
    [
        ("import torch\nreturn 1\n", "line 2: 'return' outside function"),
        ("for i in range(3):\n    pass\nbreak\n", "line 3: 'break' outside loop"),
        ("import os\nnonlocal x\n", "nonlocal declaration not allowed at module level"),
        ("def f():\n    yield 1\n    return\nawait f()\n", "'await' outside function"),
    ],
)
def test_errors_only_the_compiler_sees_are_caught_before_training(code, message):
    # ast.parse() accepts all of these; each would have burnt a full budget as a crash
    reason = check_proposal(Proposal(code), OLD)
    assert reason.startswith("the new train.py is not valid Python") and message in reason


def test_null_bytes_are_not_valid_python():
    assert "not valid Python" in check_proposal(Proposal("x = 1\0\n"), OLD)


@pytest.mark.parametrize(
    "same",
    [OLD, OLD + "\n\n", "\n" + OLD, OLD.replace("LR = 0.01\n", "LR = 0.01   \n"), OLD.rstrip()],
)
def test_unchanged_ignores_trailing_spaces_and_blank_lines_at_the_ends(same):
    assert unchanged(same, OLD)
    assert check_proposal(Proposal(same), OLD) == (
        "the new train.py is identical to the current one; make an actual change"
    )


def test_indentation_and_inner_blank_lines_are_changes():
    assert not unchanged(OLD.replace("    for", "        for"), OLD)
    assert not unchanged(OLD.replace("EPOCHS = 3\n", "EPOCHS = 3\n\n"), OLD)


def test_empty_or_missing_code():
    assert check_proposal(Proposal("  \n"), OLD) == "the new train.py is empty"
    assert check_proposal(Proposal(None, invalid_reason="no reply"), OLD) == "no reply"
    assert check_proposal(Proposal(None), OLD) == "the agent returned no train.py"


@pytest.mark.parametrize(
    "code, error",
    [
        ("y = " + "1+" * 300_000 + "1\n", "RecursionError"),
        ("y = " + "- " * 300_000 + "1\n", "MemoryError"),
        ("y = " + "lambda: " * 300_000 + "1\n", "MemoryError"),
    ],
)
def test_code_nested_too_deeply_to_compile_is_invalid_not_an_exception(code, error):
    assert check_proposal(Proposal(code), OLD) == (
        f"the new train.py is not valid Python: nested too deeply for Python to compile ({error})"
    )


def test_a_train_py_over_the_size_limit_is_invalid_before_it_is_compiled():
    code = OLD + "# " + "x" * 500 * 1024 + "\n"
    assert check_proposal(Proposal(code), OLD, max_kb=64) == (
        "the new train.py is 500 KB, over [loop] max_train_py_kb = 64; make it shorter"
    )
    assert check_proposal(Proposal(code), OLD, max_kb=1024) is None


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"# -*- coding: latin-1 -*-\nA = '\xe9'\n", "not UTF-8 (byte 0xe9 at offset 31"),
        ("# coding: latin-1\nA = 'é'\n".encode(), "coding line says iso-8859-1, but"),
        (b"# coding: bogus\nA = 1\n", "train.py: unknown encoding: bogus; save it as UTF-8"),
        (b"A = '\xff'\n", "not UTF-8 (byte 0xff at offset 5); autoresearch keeps"),
    ],
)
def test_a_train_py_that_stored_as_utf8_would_change_is_refused(data, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        pysource.text(data)


@pytest.mark.parametrize(
    "data",
    [
        b"# -*- coding: latin-1 -*-\nA = 1\n",  # ASCII reads the same in any encoding
        "# coding: utf8\nA = 'é'\n".encode(),
        "A = 'é'\n".encode(),
    ],
)
def test_a_train_py_that_stays_the_same_program_as_utf8_is_read_byte_for_byte(data):
    assert pysource.text(data).encode() == data
    if b"coding" not in data:
        assert pysource.text(b"\xef\xbb\xbf" + data).encode() == data  # the BOM is dropped
