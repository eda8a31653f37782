"""The canonical JSON of spec/audit.md written by orjson is, byte for byte, what the standard library writes
(the fallback): over every Unicode code point, control characters, 64-bit boundaries and nesting."""

from __future__ import annotations

import json
import sys
from enum import Enum, IntEnum
from typing import Any
from uuid import UUID

import orjson
import pytest

from xmpp_connect.model import chain
from xmpp_connect.model.chain import canonical_json


def stdlib(value: Any) -> bytes:
    """The canonical JSON as spec/audit.md defines it, from ``json.dumps`` alone."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def both(value: Any) -> tuple[bytes, bytes, bytes]:
    """The encoder's bytes, the fallback's (``json``, as before orjson) and the specification's."""
    return canonical_json(value), chain._json_bytes(value), stdlib(value)


def through_orjson(value: Any) -> bytes:
    """What orjson itself writes (asserting the fast path was not a fallback)."""
    assert chain._plain(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def code_points(start: int, stop: int) -> list[str]:
    return [chr(c) for c in range(start, stop) if not 0xD800 <= c <= 0xDFFF]


@pytest.mark.parametrize("plane", range(17))
def test_every_code_point_is_written_the_same(plane):
    """Every scalar value of the plane: one per string, in chunks, as array items and as object keys."""
    points = code_points(plane * 0x10000, (plane + 1) * 0x10000)
    chunks = ["".join(points[i : i + 512]) for i in range(0, len(points), 512)]
    assert through_orjson(points) == stdlib(points)
    assert through_orjson(chunks) == stdlib(chunks)
    keyed = {p: i for i, p in enumerate(points[:4096])}
    assert through_orjson(keyed) == stdlib(keyed)
    for text in chunks:
        assert canonical_json(text) == stdlib(text)


def test_control_characters_quotes_and_backslashes():
    text = "".join(chr(c) for c in range(0x20)) + '"\\/\x7f\u0085\u2028\u2029\ufeff\ufffe\uffff'
    values = [text, *text, {text: text}, [text, [text]]]
    assert through_orjson(values) == stdlib(values)
    assert canonical_json(values) == stdlib(values)


@pytest.mark.parametrize(
    "number",
    [0, 1, -1, 2**31, -(2**31), 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64,
     -(2**64), -(2**64) - 1, 10**30, -(10**30)],
)
def test_integers_at_the_64_bit_boundaries(number):
    """orjson writes integers in [-2**63, 2**64); beyond it refuses them and the fallback writes them."""
    assert canonical_json(number) == canonical_json([number])[1:-1] == stdlib(number)
    assert canonical_json({"n": [number, True, False, None]}) == stdlib({"n": [number, True, False, None]})


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\ud83d\ude00", {"\udc00": 1}])
def test_lone_surrogates_take_the_fallback_which_refuses_them(text):
    """Not UTF-8-encodable: orjson refuses them, the fallback raises as ``canonical_json`` always did."""
    with pytest.raises(UnicodeEncodeError):
        chain._json_bytes(text)
    with pytest.raises(UnicodeEncodeError):
        canonical_json([text])


def test_nested_lists_and_dicts_with_sorted_keys():
    value = {
        "z": [1, None, {"y": "\u00fc", "b": True, "B": False, "\u00e9": [], "": {}}],
        "a": -2,
        "\U0001f600": {"\u2603": ["x", ("t", 1)], "\u00ff": {"k": [[[]]]}},
        "aa": "", "a\x00": "nul", "A": None,
    }
    assert through_orjson(value) == stdlib(value)
    assert canonical_json(value) == stdlib(value)


def test_deep_nesting_beyond_orjsons_limit_takes_the_fallback():
    value: list[Any] = []
    for _ in range(300):
        value = [value, "x"]
    assert canonical_json(value) == stdlib(value)


class Colour(Enum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


class Name(str):
    pass


@pytest.mark.parametrize(
    "value",
    [1.5, 1e16, 0.1, True, Level.HIGH, Name("n"), {1: "int key"}, {None: 1}, {True: 2}, [1.0, "x"],
     {"k": 2.5e-7}, ("a", 3)],
)
def test_other_types_are_written_as_json_writes_them(value):
    """Floats, subclasses and non-string keys are not orjson's to write: the fallback's bytes, as before."""
    assert canonical_json(value) == stdlib(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Colour.RED, UUID(int=1), b"bytes", {1.5}])
def test_what_json_refuses_is_still_refused(value):
    with pytest.raises((ValueError, TypeError)):
        stdlib(value)
    with pytest.raises((ValueError, TypeError)):
        canonical_json([value])


def test_a_tuple_is_an_array():
    values = ("xc-chain-1", "t\u00e9nant", None, 0, 1, 2**64, '{"b":1}')
    assert canonical_json(values) == stdlib(list(values))


def test_a_cycle_is_refused():
    value: list[Any] = []
    value.append(value)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        with pytest.raises((ValueError, RecursionError)):
            canonical_json(value)
    finally:
        sys.setrecursionlimit(limit)
