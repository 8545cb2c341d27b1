"""How many tokens a text takes: a conservative estimate, the same for every model.

Each model family has its own tokenizer (Claude's, OpenAI's, a local Llama's or Qwen's), some are
not published, and the published ones download their vocabularies at run time. So the prompt
budget counts with one estimate that errs on the high side instead:

- a run of ASCII letters: one token per 3 letters, rounded up (a single space before it is free);
- each digit, each other ASCII character (punctuation, a newline) and each run of whitespace: one;
- any other character: one per byte of its UTF-8 form (a byte-level tokenizer's worst case).

On code, prose, numbers, logs and diffs this counts 1.5 to 2.2 times the tokens of OpenAI's
cl100k_base encoding (tests/test_tokens.py checks it against the real tokenizer), which leaves
room for tokenizers that need more tokens than cl100k_base does. Strings of random letters (base64,
not something a prompt here holds) are the exception: their letters tokenize about 1.5 to a token.
"""

from __future__ import annotations

import re

_WORDS = re.compile(r" ?[A-Za-z]+")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_ASCII_SINGLES = re.compile(r"[\x00-\x08\n\x0e-\x1f!-@\[-`{-\x7f]")  # digits, punctuation, \n
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def estimate(text: str) -> int:
    """At least as many tokens as text takes for the models this project prices (see above)."""
    words = _WORDS.findall(text)
    letters = sum((len(w) + 2 - (w[0] == " ")) // 3 for w in words)
    spaces = len(_SPACES.findall(_WORDS.sub("a", text)))  # runs a word separates stay apart
    singles = len(_ASCII_SINGLES.findall(text))
    wide = sum(len(run.encode("utf-8", "surrogatepass")) for run in _NON_ASCII.findall(text))
    return letters + spaces + singles + wide
