"""The edit formats: what a model's reply must look like, and what it is told when it does not."""

from __future__ import annotations

import pytest

from autoresearch.agents.edits import EditError, apply_edit, parse_search_replace, parse_whole

OLD = """import torch

LR = 0.01
EPOCHS = 3


def train():
    for epoch in range(EPOCHS):
        step(LR)
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


# --- whole -------------------------------------------------------------------------------------


def test_whole_takes_the_python_block_and_the_text_around_it():
    reply = "Raise the learning rate.\n\n```python\nLR = 0.1\n```\n\nIt should converge faster."
    edit = parse_whole(reply)
    assert edit.train_py == "LR = 0.1\n"
    assert edit.explanation == "Raise the learning rate.\n\nIt should converge faster."


def test_whole_keeps_other_languages_in_the_explanation():
    reply = "Run it with:\n```bash\npython train.py\n```\n```py\nx = 1\n```"
    edit = parse_whole(reply)
    assert edit.train_py == "x = 1\n"
    assert "python train.py" in edit.explanation


def test_whole_without_a_python_block_says_what_it_found():
    with pytest.raises(EditError, match=r"no ```python block \(it has 1 fenced block"):
        parse_whole("Here:\n```\nx = 1\n```")
    with pytest.raises(EditError, match="no ```python block; put the complete new train.py"):
        parse_whole("I would raise the learning rate.")


def test_whole_with_several_python_blocks_names_their_lines():
    reply = "a\n```python\nx = 1\n```\nb\n```python\nx = 2\n```"
    with pytest.raises(EditError, match=r"2 ```python blocks \(opened on lines 2, 6\)"):
        parse_whole(reply)


def test_whole_with_an_unclosed_block_suspects_a_cut_off_reply():
    with pytest.raises(EditError, match="opened on line 2 .* never closed .*cut off"):
        parse_whole("Change:\n```python\nx = 1\n")


def test_whole_with_an_empty_block():
    with pytest.raises(EditError, match="block in your reply is empty"):
        parse_whole("```python\n\n```")


def test_whole_allows_longer_fences_around_code_with_backticks():
    reply = '````python\ns = """\n```\n"""\n````'
    assert parse_whole(reply).train_py == 's = """\n```\n"""\n'


# --- search/replace ----------------------------------------------------------------------------


def test_search_replace_applies_blocks_in_order_and_keeps_the_explanation():
    reply = (
        "Faster learning, more epochs.\n\n"
        + block("LR = 0.01\n", "LR = 0.1\n")
        + "\nand\n\n"
        + block("EPOCHS = 3\n", "EPOCHS = 5\n")
    )
    edit = parse_search_replace(reply, OLD)
    assert "LR = 0.1\nEPOCHS = 5\n" in edit.train_py
    assert edit.train_py.replace("LR = 0.1", "LR = 0.01").replace("= 5", "= 3") == OLD
    assert edit.explanation == "Faster learning, more epochs.\n\nand"


def test_search_replace_inside_a_fence_drops_the_fence_from_the_explanation():
    reply = "Why.\n```python\n" + block("LR = 0.01\n", "LR = 0.1\n") + "```\nDone."
    edit = parse_search_replace(reply, OLD)
    assert "LR = 0.1\n" in edit.train_py
    assert edit.explanation == "Why.\nDone."


def test_search_replace_can_delete_lines():
    edit = parse_search_replace(block("import torch\n\n", ""), OLD)
    assert edit.train_py == OLD.removeprefix("import torch\n\n")


def test_search_replace_later_blocks_see_earlier_edits():
    reply = block("LR = 0.01\n", "LR = 0.1\n") + block("LR = 0.1\n", "LR = 0.2\n")
    assert "LR = 0.2\n" in parse_search_replace(reply, OLD).train_py


def test_search_that_matches_nothing_names_the_block_and_the_missing_line():
    reply = block("LR = 0.01\n", "LR = 0.1\n") + block("EPOCHS = 3\nBATCH = 64\n", "")
    with pytest.raises(EditError) as err:
        parse_search_replace(reply, OLD)
    message = str(err.value)
    assert message.startswith("SEARCH block 2 matches nothing in train.py")
    assert "its line 2 does not occur in train.py:\n    BATCH = 64" in message


def test_search_that_differs_only_in_indentation_says_so():
    with pytest.raises(EditError, match="block 1 .* only in indentation"):
        parse_search_replace(block("for epoch in range(EPOCHS):\n", "pass\n"), OLD)


def test_search_with_lines_out_of_order():
    with pytest.raises(EditError, match="not consecutively"):
        parse_search_replace(block("EPOCHS = 3\nLR = 0.01\n", ""), OLD)


def test_search_that_matches_several_places_names_their_lines():
    text = "x = 1\ny = 2\nx = 1\n"
    with pytest.raises(EditError, match=r"block 1 matches 2 places in train.py \(lines 1, 3\)"):
        parse_search_replace(block("x = 1\n", "x = 3\n"), text)


def test_search_matches_whole_lines_only():
    text = "xx = 1\nx = 1\n"
    assert parse_search_replace(block("x = 1\n", "x = 2\n"), text).train_py == "xx = 1\nx = 2\n"


@pytest.mark.parametrize(
    "reply, message",
    [
        ("Just change the learning rate.", "no SEARCH/REPLACE blocks"),
        ("<<<<<<< SEARCH\nLR = 0.01\n>>>>>>> REPLACE\n", "block 1 .* has no '=======' line"),
        ("<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.1\n", "block 1 .* never closed .*cut off"),
        ("LR = 0.01\n=======\nLR = 0.1\n>>>>>>> REPLACE\n", "line 2 .* outside a SEARCH/REPLACE"),
        (block("\n", "x = 1\n"), "block 1 has an empty SEARCH part"),
        (
            "<<<<<<< SEARCH\nLR = 0.01\n=======\nLR = 0.1\n<<<<<<< SEARCH\n",
            "block 1 .* not closed with '>>>>>>> REPLACE' before the next",
        ),
    ],
)
def test_malformed_search_replace_blocks(reply, message):
    with pytest.raises(EditError, match=message):
        parse_search_replace(reply, OLD)


def test_apply_edit_dispatches_on_the_format():
    assert apply_edit("whole", "```python\nx = 1\n```", OLD).train_py == "x = 1\n"
    edit = apply_edit("search-replace", block("LR = 0.01\n", "LR = 1.0\n"), OLD)
    assert "LR = 1.0" in edit.train_py
