"""The compiled chain entry (store/_chain_entry.c) gives model/chain.py's digests byte for byte, and declines
(None: the linker's interpreted path) every value it does not encode as the model does."""

from __future__ import annotations

import enum
import os
import random
from typing import Any

import pytest

from xmpp_connect.model.chain import (
    CHAIN_COLUMNS,
    CHAIN_FORMAT,
    CONTENT_COLUMNS,
    GENESIS,
    PERSONAL_COLUMNS,
    entry_digest,
    link,
    personal_digest,
)
from xmpp_connect.store import chain as store_chain
from xmpp_connect.store.chain import _CONTENT_LAYOUT, _PERSONAL_LAYOUT, ChainLinker
from xmpp_connect.store.rows import EVENT_COLUMNS

if os.environ.get("CI"):  # CI installs the package, which compiles the module: a missing one is a failure
    from xmpp_connect.store import _chain_entry as compiled
else:
    compiled = pytest.importorskip(
        "xmpp_connect.store._chain_entry",
        reason="not compiled: `pip install -e .` builds it (hatch_build.py)",
    )

ALPHABET = [
    *(chr(c) for c in range(0x20)),
    '"', "\\", "/", " ", "a", "Z", "0", "\x7f", "\u0080", "\u00e9", "\u00ff", "\u0100", "\u07ff", "\u0800",
    "\u2028", "\u2029", "\u2603", "\ud7ff", "\ue000", "\ufeff", "\uffff", "\U00010000", "\U0001f600",
    "\U0010ffff",
]  # fmt: skip
ASCII = [chr(c) for c in range(0x80)]
INT64 = (-(2**63), -(2**63) + 1, -1, 0, 1, 2**31, 2**63 - 1)


def _text(rng: random.Random) -> str:
    size = rng.choice([0, 1, 3, 20, 300, 700, 1500])
    draw = rng.random()
    if draw < 0.2:  # long plain ASCII runs: the chunked and the direct hash updates
        return "".join(rng.choice("abc xyz") for _ in range(size))
    if draw < 0.5:  # ASCII with escapes: the word-at-a-time scan
        return "".join(rng.choice(ASCII) for _ in range(size))
    return "".join(rng.choice(ALPHABET) for _ in range(size))


def _value(rng: random.Random) -> Any:
    kind = rng.randrange(6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([*INT64, rng.randrange(-(2**63), 2**63)])
    return _text(rng)


def _row(rng: random.Random) -> dict[str, Any]:
    return {name: _value(rng) for name in EVENT_COLUMNS}


def _entry(row: dict[str, Any], salt: bytes, prev_chain: str, raw: Any = None, prev_id: Any = None) -> Any:
    values = tuple(row[name] for name in EVENT_COLUMNS)
    return compiled.entry(
        CHAIN_FORMAT, _PERSONAL_LAYOUT, _CONTENT_LAYOUT, salt, salt.hex(), prev_chain, values, raw, prev_id
    )


def _model(row: dict[str, Any], salt: bytes, prev_chain: str, raw: Any, prev_id: Any) -> tuple[Any, ...]:
    personal = personal_digest(salt.hex(), row)
    entry = entry_digest(dict(row, raw_sha256=raw, prev_event_id=prev_id, personal_sha256=personal))
    return (raw, salt.hex(), personal, prev_id, entry, link(prev_chain, entry))


def test_random_rows_give_the_models_digests():
    """Strings of every control character, quotes, backslashes, non-ASCII and astral characters, empty and
    long; int64's bounds, booleans, None: the compiled digests are model/chain.py's."""
    rng = random.Random(20)
    for _ in range(600):
        row = _row(rng)
        salt = rng.randbytes(16)
        prev_chain = rng.choice([GENESIS, rng.randbytes(32).hex()])
        raw, prev_id = _value(rng), _value(rng)
        assert _entry(row, salt, prev_chain, raw, prev_id) == _model(row, salt, prev_chain, raw, prev_id)


def test_each_character_alone_gives_the_models_digests():
    row = dict.fromkeys(EVENT_COLUMNS, "")
    for char in ALPHABET:
        for name in ("fact", "notes"):  # a personal and a content column
            probe = dict(row, **{name: f"x{char}y{char}"})
            assert _entry(probe, b"s", GENESIS) == _model(probe, b"s", GENESIS, None, None)


def test_each_ascii_character_at_each_place_of_a_short_string_gives_the_models_digests():
    """The ASCII scan goes 8 bytes at a time, then byte by byte: every character at every offset of 0-17."""
    row = dict.fromkeys(EVENT_COLUMNS, None)
    for size in range(18):
        for at in range(size):
            for char in ASCII:
                text = "a" * at + char + "z" * (size - at - 1)
                probe = dict(row, fact=text, notes=text)
                assert _entry(probe, b"s", GENESIS) == _model(probe, b"s", GENESIS, None, None)


def test_an_upper_case_previous_chain_hash_links_as_the_model_does():
    row = dict.fromkeys(EVENT_COLUMNS, 1)
    prev_chain = os.urandom(32).hex().upper()
    assert _entry(row, b"", prev_chain) == _model(row, b"", prev_chain, None, None)


class _Text(str):
    pass


class _Number(int):
    pass


class _Kind(enum.IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "odd",
    [1e-07, 1.0, _Text("x"), _Number(1), _Kind.ONE, 2**63, -(2**63) - 1, "\ud800", "a\udfffb", b"x", [1], {}],
)
@pytest.mark.parametrize("column", ["fact", "notes", "raw_sha256", "prev_event_id"])
def test_values_outside_the_canonical_scalars_are_declined(odd, column):
    """Floats, str and int subclasses, integers beyond 64 bits, lone surrogates, containers: None."""
    row = dict.fromkeys(EVENT_COLUMNS, "v")
    extra = {"raw": "r", "prev_id": "p"}
    if column == "raw_sha256":
        extra["raw"] = odd
    elif column == "prev_event_id":
        extra["prev_id"] = odd
    else:
        row[column] = odd
    assert _entry(row, b"salt", GENESIS, **extra) is None


@pytest.mark.parametrize("prev_chain", ["0" * 63, "0" * 65, "g" * 64, " " + "0" * 63, "\u00e9" * 64, None])
def test_a_previous_chain_hash_that_is_not_64_hex_digits_is_declined(prev_chain):
    assert _entry(dict.fromkeys(EVENT_COLUMNS, "v"), b"salt", prev_chain) is None


def test_a_row_that_is_not_a_tuple_is_declined():
    values = ["v"] * len(EVENT_COLUMNS)
    args = (CHAIN_FORMAT, _PERSONAL_LAYOUT, _CONTENT_LAYOUT, b"", "", GENESIS, values, None, None)
    assert compiled.entry(*args) is None


def test_the_linker_uses_the_compiled_entry():
    assert store_chain.COMPILED


def test_the_linker_gives_the_models_values_for_declined_rows():
    """Rows the compiled entry declines take the interpreted path: the same columns as the model's."""
    rng = random.Random(21)
    tenant = "t"
    linker = ChainLinker(lambda _sql, _params: None, {tenant: (None, GENESIS)}, lambda _key: "ab" * 32)
    head = GENESIS
    for seq, odd in enumerate([1e-07, _Text("caf\u00e9"), 2**64 - 1, None, _Kind.ONE, "plain"], start=1):
        row = _row(rng)
        row.update(seq=seq, tenant_id=tenant, event_id=f"e{seq}", raw_ref=None, fact=odd)
        values = linker.values(tuple(row[name] for name in EVENT_COLUMNS))
        chain = dict(zip(CHAIN_COLUMNS, values, strict=True))
        salt = bytes.fromhex(chain["personal_salt"])
        assert chain["personal_sha256"] == personal_digest(salt.hex(), row)
        entry = entry_digest(dict(row, **chain))
        assert (chain["entry_hash"], chain["chain_hash"]) == (entry, link(head, entry))
        linker.advance(tenant, row["event_id"], values)
        head = chain["chain_hash"]


def test_the_layouts_name_the_models_columns():
    extended = ("format", "raw_sha256", "prev_event_id", *EVENT_COLUMNS)
    assert [extended[i] for i in _PERSONAL_LAYOUT] == list(PERSONAL_COLUMNS)
    content = [extended[i] if i != 255 else "personal_sha256" for i in _CONTENT_LAYOUT]
    assert content == ["format", *CONTENT_COLUMNS]


def test_serving_without_the_compiled_module_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from xmpp_connect.app import server

    with caplog.at_level("WARNING", logger="xmpp_connect.app.server"):
        server.warn_if_chain_interpreted()
        assert not caplog.records  # built: nothing to say
        monkeypatch.setattr(store_chain, "COMPILED", False)
        server.warn_if_chain_interpreted()
    assert ["compiled chain entry module is not built" in r.getMessage() for r in caplog.records] == [True]
