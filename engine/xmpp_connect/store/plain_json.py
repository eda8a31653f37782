"""The sending side's JSON (a request's idempotency hash, the outbox's request, the stored result) written by
orjson where it is byte for byte what the standard library's encoder writes, by that encoder otherwise."""

from __future__ import annotations

import json
from typing import Any

import orjson

from xmpp_connect.store.rows import to_json

_PLAIN = frozenset((str, int, bool, type(None)))
"""The exact types orjson writes as ``json`` does (what it refuses, a lone surrogate or an integer beyond 64
bits, takes ``json``); floats, subclasses and every other type are not plain."""
_KEYS = frozenset((str,))
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def plain(value: Any) -> bool:
    """Whether ``value`` holds only plain scalars in lists, tuples and string-keyed dicts (a flat level's
    types checked in one C loop, nested levels by recursion)."""
    kind = type(value)
    if kind is dict:
        if not _KEYS.issuperset(map(type, value)):
            return False
        members: Any = value.values()
    elif kind is list or kind is tuple:
        members = value
    else:
        return kind in _PLAIN
    return _PLAIN.issuperset(map(type, members)) or all(map(plain, members))


def canonical_bytes(value: Any) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)`` as
    UTF-8: sorted keys, no whitespace, no ASCII escaping."""
    try:
        if plain(value):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, RecursionError):
        pass
    return _CANONICAL.encode(value).encode()


def ascii_json(value: Any) -> str:
    """``rows.to_json`` (sorted keys, no whitespace, ASCII only) for nested values too: orjson's text where
    it is printable ASCII (then ``json`` writes the same; it escapes every other character)."""
    try:
        if plain(value):
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
            if text.isascii() and b"\x7f" not in text:
                return text.decode()
    except (orjson.JSONEncodeError, RecursionError):
        pass
    return to_json(value)
