"""A stored JSON column (``to_json``) is, byte for byte, what ``json.dumps(sort_keys=True, separators=(",",
":"), default=str)`` writes, whether orjson wrote it (a flat dict of plain values whose text is printable
ASCII) or the standard library did (everything else)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from xmpp_connect.store.rows import to_json


def stdlib(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def code_points(start: int, stop: int) -> list[str]:
    return [chr(c) for c in range(start, stop) if not 0xD800 <= c <= 0xDFFF]


@pytest.mark.parametrize("plane", range(17))
def test_every_code_point_in_keys_and_values(plane: int) -> None:
    points = code_points(plane * 0x10000, (plane + 1) * 0x10000)
    for start in range(0, len(points), 512):
        chunk = "".join(points[start : start + 512])
        value = {"kind": "receipt", chunk: chunk, "z": chunk[:3]}
        assert to_json(value) == stdlib(value)


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"a": "\x00\x01\x1f\x7f\b\f\n\r\t\"\\/", "b": "ascii only"},
        {"b": 1, "a": True, "c": None, "d": False, "e": ""},
        {"big": 2**63 - 1, "small": -(2**63), "huge": 2**64, "negative_huge": -(2**70)},
        {"lone": "\ud800", "pair": "\U0001f600"},
        {"float": 1.5, "tiny": 1e-7, "large": 1e16},
        {"nested": {"b": 1, "a": [1, "x"]}, "list": ["é"]},
        {1: "int key", 3: "another"},
        {"when": datetime(2026, 12, 5, 1, 0, tzinfo=UTC)},
        {"sorted": 1, "Sorted": 2, "_": 3, "~": 4, "a b": 5},
        ["not", "a", "dict"],
        "a string",
        {"max": sys.maxsize, "min": -sys.maxsize - 1},
    ],
)
def test_edge_values(value: Any) -> None:
    assert to_json(value) == stdlib(value)
