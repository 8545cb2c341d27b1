"""What counts as failing "the same way" for [loop] max_consecutive_failures."""

import pytest

from autoresearch.history import History
from autoresearch.records import Iteration

SAME_WAY = [
    (
        "invalid",
        "openai API: connection failed: [Errno 111] Connection refused (gave up after 5 attempt(s))",
        "openai API: connection failed: [Errno 113] Connection refused (gave up after 5 attempt(s))",
    ),
    (
        "invalid",
        "anthropic API: HTTP 529: Overloaded (gave up after 5 attempt(s))",
        "anthropic API: HTTP 500: Overloaded (gave up after 5 attempt(s))",
    ),
    ("crash", "exit code 1: NameError: name 'lr' is not defined", "exit code 1: NameError: x"),
    ("crash", "timeout: killed at 3s budget + 1s grace", "timeout: killed at 4s budget + 1s grace"),
    (
        "invalid",
        "train.py is unchanged",
        "train.py is unchanged; reverted the agent's changes to a",
    ),
]
OTHER_WAYS = [
    ("crash", "exit code 1: NameError: name 'lr' is not defined", "exit code 1: KeyError: 'lr'"),
    ("invalid", "train.py is unchanged", "train.py does not parse: line 3: invalid syntax"),
]


@pytest.mark.parametrize("status_, first, second", SAME_WAY + OTHER_WAYS)
def test_what_counts_as_failing_the_same_way(status_, first, second):
    history = History(
        [Iteration(0, "baseline", value=0.1)]
        + [Iteration(n, status_, reason=reason) for n, reason in enumerate([first, second], 1)]
    )
    assert history.streak == (2 if (status_, first, second) in SAME_WAY else 1)
    history.append(Iteration(3, "discard", value=0.1))
    assert history.streak == 0
