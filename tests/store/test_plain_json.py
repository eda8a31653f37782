"""The sending side's JSON (store/plain_json.py) is, byte for byte, what the standard library writes, whether
orjson wrote it (plain values, nested) or ``json`` did (everything else)."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from xmpp_connect.store.idempotency import payload_hash
from xmpp_connect.store.plain_json import ascii_json, canonical_bytes, plain
from xmpp_connect.store.rows import to_json


def stdlib_canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def stdlib_ascii(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def code_points(start: int, stop: int) -> str:
    return "".join(chr(c) for c in range(start, stop) if not 0xD800 <= c <= 0xDFFF)


SEND = {
    "action_type": "notification.send",
    "idempotency_key": "k-1",
    "target_endpoint": {"endpoint_type": "xmpp_jid", "value": "bob@example.org"},
    "content": "Hello <b>&amp;</b> \"there\"\n\t",
    "options": {"request_receipt": True, "receipt_timeout_s": 30, "message_type": "chat"},
    "tracking_context": {"coordination_case_id": "case-1", "participant_id": None, "n": [1, 2, [3, {}]]},
}
ODD = [
    {},
    [],
    (),
    {"t": (1, "a", None)},
    {"f": 1.5, "g": [0.1, 1e16, -0.0]},
    {"nan": float("nan"), "inf": [float("inf")]},
    {"big": 2**64, "inner": {"huge": -(2**70)}},
    {"at": datetime(2026, 12, 5, 5, 0, tzinfo=UTC)},
    {1: "int key", 2: "b"},
    {"bool": True, "int_subclass": [True, False, 0, -1]},
    {"z": {"y": {"x": {"w": [[[["deep"]]]]}}}},
    {"keys": {"é": 1, "e": 2, "\U0001F600": 3, "Z": 4, "": 5}},
    {"ascii": "\x00\x01\x1f\x7f\b\f\n\r\t\"\\/", "latin": "café", "astral": "\U0001F600", "sep": "\u2028"},
]


@pytest.mark.parametrize("value", [SEND, *ODD])
def test_the_text_is_the_standard_librarys(value: Any) -> None:
    assert canonical_bytes(value) == stdlib_canonical(value)
    assert ascii_json(value) == stdlib_ascii(value) == to_json(value)


@pytest.mark.parametrize("plane", [0, 1, 2, 14, 16])
def test_every_code_point_in_nested_keys_and_values(plane: int) -> None:
    points = code_points(plane * 0x10000, (plane + 1) * 0x10000)
    for start in range(0, len(points), 512):
        chunk = points[start : start + 512]
        value = {"outer": {chunk: [chunk, {"k": chunk[:3]}]}, chunk[:5]: chunk[-5:]}
        assert canonical_bytes(value) == stdlib_canonical(value)
        assert ascii_json(value) == stdlib_ascii(value)


def test_random_nested_values() -> None:
    rnd = random.Random(17)
    alphabet = code_points(0, 0x80) + "éß\u2028\U0001F600"

    def text() -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 6)))

    def value(depth: int) -> Any:
        pick = rnd.randint(0, 9 if depth < 4 else 5)
        scalars = [text(), rnd.randint(-(2**70), 2**70), rnd.randint(-5, 5), True, False, None]
        if pick <= 5:
            return scalars[pick]
        if pick <= 7:
            return [value(depth + 1) for _ in range(rnd.randint(0, 4))]
        return {text(): value(depth + 1) for _ in range(rnd.randint(0, 4))}

    for _ in range(3000):
        item = value(0)
        assert canonical_bytes(item) == stdlib_canonical(item)
        assert ascii_json(item) == stdlib_ascii(item)


def test_the_request_hash_is_the_one_stored_before() -> None:
    for value in [SEND, *ODD]:
        assert payload_hash(value) == hashlib.sha256(stdlib_canonical(value)).hexdigest()


def test_what_orjson_does_not_write_as_json_is_not_plain() -> None:
    assert plain(SEND)
    assert not plain({"f": 1.0})
    assert not plain({"at": datetime(2026, 1, 1, tzinfo=UTC)})
    assert not plain({1: "a"})
    assert not plain({"s": {"a"}})


def test_refusals_stay_the_standard_librarys() -> None:
    lone = {"s": "\ud800"}
    with pytest.raises(UnicodeEncodeError):
        canonical_bytes(lone)
    assert ascii_json(lone) == stdlib_ascii(lone)
    deep: Any = "x"
    for _ in range(sys.getrecursionlimit() + 10):
        deep = [deep]
    with pytest.raises(RecursionError):
        canonical_bytes(deep)
    with pytest.raises(RecursionError):
        ascii_json(deep)
