"""The tokenizer: how names, descriptions, properties and queries become words.

Owns the word splitting (punctuation, dots, snake_case, ASCII camelCase) that the
index builds its postings with and that a query is split by, and the prefix bounds
a query token may match by.
"""

from __future__ import annotations

import functools
import re

MAX_PREFIX = 24
MIN_PREFIX = 2
#: Words are runs of letters and digits (any script); ``_`` and punctuation separate.
_SPLIT_RE = re.compile(r"[\W_]+")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def tokenize(text: str | None) -> list[str]:
    """Lowercase tokens of ``text``: splits on punctuation, dots, snake_case and camelCase."""
    if not text:
        return []
    out: list[str] = []
    for chunk in _SPLIT_RE.split(text):
        if chunk:
            out.extend(word_tokens(chunk))
    return list(dict.fromkeys(out))


@functools.lru_cache(maxsize=1 << 16)
def word_tokens(chunk: str) -> tuple[str, ...]:
    """The tokens of one word (a run of letters and digits): its camelCase and
    digit parts, lowercased, for an ASCII word; the word lowercased otherwise."""
    # Words repeat across names, columns and descriptions: a full index build
    # splits each distinct word once instead of once per occurrence.
    if not chunk.isascii():
        # camelCase and digit runs are split in ASCII words only: splitting "Größe"
        # or "café2" at its non-ASCII letters would make words nobody types.
        return (chunk.lower(),)
    return tuple(p.lower() for p in _CAMEL_RE.findall(chunk))


def token_prefixes(token: str) -> list[str]:
    """The proper prefixes of ``token`` that a query token can match
    (``MIN_PREFIX`` to ``MAX_PREFIX`` characters)."""
    return [token[:i] for i in range(MIN_PREFIX, min(len(token) - 1, MAX_PREFIX) + 1)]


def name_tokens(name: str) -> list[str]:
    """Tokens of an object name: its parts plus the whole (lowercased) name."""
    tokens = tokenize(name)
    whole = name.lower()
    return tokens if whole in tokens else [*tokens, whole]
