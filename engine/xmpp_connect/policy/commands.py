"""The §17 command table: classify an inbound body as a command, and sanitize inbound text first.

Matching is on the whole body: NFKC, whitespace collapsed and stripped, casefolded, and trailing ``.`` and
``!`` removed (``"Ack!"`` and ``"ok."`` are ACK). A ``?`` is kept, so ``"OK?"`` is a question: free text.
An empty or whitespace-only body is ``none``; any other unmatched body is the table's ``otherwise``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

MAX_TEXT_CHARS = 4096
KEPT_CONTROLS = frozenset("\n\t")
DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})
TRAILING_PUNCTUATION = ".!"
EMPTY_BODY = "none"


def sanitize_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """NFKC-normalise, drop control and format characters (zero-width, bidi overrides) except newline and
    tab, and cut to ``max_chars`` characters."""
    normalized = unicodedata.normalize("NFKC", text)
    kept = (
        ch for ch in normalized if ch in KEPT_CONTROLS or unicodedata.category(ch) not in DROPPED_CATEGORIES
    )
    return "".join(kept)[:max_chars]


def command_key(text: str) -> str:
    """The form keywords and bodies are compared in."""
    collapsed = " ".join(unicodedata.normalize("NFKC", text).split())
    return collapsed.casefold().rstrip(TRAILING_PUNCTUATION).rstrip()


@dataclass(frozen=True)
class CommandTable:
    """Keyword -> classification, plus the classification of any other non-empty body."""

    keywords: Mapping[str, str]
    otherwise: str

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> CommandTable:
        """Build from the parsed mappings/commands.yaml (lists or tuples); ValueError on a malformed or
        contradictory table."""
        entries = data.get("commands")
        otherwise = data.get("otherwise")
        if not isinstance(entries, list | tuple):
            raise ValueError("commands table: 'commands' must be a list")
        if not isinstance(otherwise, str) or not otherwise:
            raise ValueError("commands table: 'otherwise' must be a non-empty string")
        keywords: dict[str, str] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise ValueError(f"commands table: entry {index} is not a mapping")
            classification = entry.get("classification")
            words = entry.get("keywords")
            if not isinstance(classification, str) or not classification:
                raise ValueError(f"commands table: entry {index} has no classification")
            if not isinstance(words, list | tuple) or not words:
                raise ValueError(f"commands table: entry {index} has no keywords")
            for word in words:
                key = command_key(str(word))
                if not key:
                    raise ValueError(f"commands table: entry {index} has an empty keyword")
                if keywords.get(key, classification) != classification:
                    raise ValueError(f"commands table: keyword {word!r} maps to two classifications")
                keywords[key] = classification
        return cls(keywords=keywords, otherwise=otherwise)

    def classify(self, body: str | None) -> str:
        """The body's classification: a keyword's, ``none`` when empty, else ``otherwise``."""
        if body is None or not body.strip():
            return EMPTY_BODY
        return self.keywords.get(command_key(body), self.otherwise)
