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

from functools import lru_cache

# Each byte of the text's UTF-8 form by its class: a letter (a), a space ( ), other whitespace
# that a word does not take (\t: tab, \r, \f, \v) and the rest (.): a digit, punctuation, a
# newline, a control character or a byte of a non-ASCII character, each one token.
_CLASS = bytearray(b"." * 256)
for _byte in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _CLASS[_byte] = ord("a")
for _byte in b"\t\r\x0b\x0c":
    _CLASS[_byte] = ord("\t")
_CLASS[ord(" ")] = ord(" ")
CLASSES = bytes(_CLASS)
SHORT = 2_000  # characters: a line or an entry, kept in the larger of the two caches


def estimate(text: str) -> int:
    """At least as many tokens as text takes for the models this project prices (see above).
    Texts recur from one prompt to the next (its lines, its parts): each is counted once."""
    return _short(text) if len(text) <= SHORT else _long(text)


def _count(text: str) -> int:
    """The rules above, counted on the classes of the text's bytes (no Python loop)."""
    t = text.encode("utf-8", "surrogatepass").translate(CLASSES)
    thirds = t.replace(b"aaa", b"A")  # a run of n letters: n // 3 A, then 0-2 a
    letters = thirds.count(b"A") + thirds.replace(b"aa", b"a").count(b"a")
    # runs of whitespace (each starts after a letter, after another character, or the text
    # starts with it), less a single space before a word (the word takes it)
    runs = sum(t.count(pair) for pair in (b"a ", b"a\t", b". ", b".\t")) + t[:1].isspace()
    taken = t.count(b" a") - t.count(b"  a") - t.count(b"\t a")
    return letters + runs - taken + t.count(b".")


_short = lru_cache(maxsize=8_192)(_count)
_long = lru_cache(maxsize=64)(_count)
