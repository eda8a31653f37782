"""The evidence hash chain: every append extends the tenant's chain; ``verify_chain`` names the first entry
that was changed, removed or reordered directly in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from chain_helpers import append_log, tamper
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from store_helpers import T0, evidence

from xmpp_connect.model.chain import (
    CHAIN_COLUMNS,
    CONTENT_COLUMNS,
    GENESIS,
    PERSONAL_COLUMNS,
    canonical_json,
    content_digest,
    link,
    salted_digest,
    walk,
)
from xmpp_connect.store.chain import _CONTENT, _PERSONAL, ChainLinker, SaltSource
from xmpp_connect.store.rows import EVENT_COLUMNS, event_row

KEY = Ed25519PrivateKey.generate()


@pytest.mark.parametrize(
    "value",
    [
        ["xc-chain-1", "tenant", None, 0, 1, "[]", '{"b":1,"a":"x"}', "caf\u00e9 \u2603", 'quote " and \\'],
        {"z": [1, None, {"y": "\u00fc", "b": True}], "a": -2},
        "plain",
    ],
)
def test_the_canonical_form_is_sorted_compact_utf8_json(value):
    """spec/audit.md's canonical JSON, byte for byte, as any verifier would write it with json.dumps."""

    def dumps(v: object) -> bytes:
        text = json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode()

    assert canonical_json(value) == dumps(value)
    values = value if isinstance(value, list) else [value]
    assert content_digest(values) == hashlib.sha256(dumps(["xc-chain-1", *values])).hexdigest()


def test_the_chain_digests_are_the_known_ones():
    """xc-chain-1's digests, pinned: stored chains and exported bundles must go on verifying."""
    values = ["tenant", "evt_1", "caf\u00e9 \u2603", 'quote " and \\ and \n\x01', None, 0, 1, "[]", '{"b":1}']
    personal = ["participant", None, '{"kind":"receipt"}', "bob@example.net/\u2603", None]
    assert content_digest(values) == "64a074a490489a0c0cdb01b15be440163afbf28c87a532c2b367ba269c1d118e"
    assert salted_digest(bytes(range(16)), personal) == (
        "8fa6d74da8db0adeb1d3c0471ff2e6a225a73b89fdcdc9f8aac96d0381d5a18a"
    )
    assert link(GENESIS, "ab" * 32) == "debb3e7acfff6dd18d501042273629f0b79cb206bb8c24f59f62ddb80849403b"


def _spec_chain(rows: list[dict], raw_digest: str) -> list[dict]:
    """spec/audit.md's chain columns for rows in order, written from the spec alone (json.dumps, hashlib)."""

    def canonical(value: object) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    head, previous, chained = GENESIS, None, []
    for row in rows:
        salt = bytes.fromhex(row["personal_salt"])
        entry = dict(row, raw_sha256=raw_digest if row["raw_ref"] else None, prev_event_id=previous)
        entry["personal_sha256"] = sha(salt + canonical([row[name] for name in PERSONAL_COLUMNS]))
        entry["entry_hash"] = sha(canonical(["xc-chain-1", *(entry[name] for name in CONTENT_COLUMNS)]))
        head = entry["chain_hash"] = sha(bytes.fromhex(head) + bytes.fromhex(entry["entry_hash"]))
        previous = row["event_id"]
        chained.append(entry)
    return chained


def test_appended_chain_values_are_the_specified_ones():
    """The store's chain values for awkward rows (non-ASCII, quotes, control characters, a raw stanza) equal
    the spec's, computed independently, and the verification walk accepts them."""
    tenant, raw_digest = "t\u00e9nant", "cd" * 32
    events = [
        *evidence(tenant, "m\u2603", "server_acknowledged", T0, participant_id='p"1\\', case_id=None),
        *evidence(tenant, "m2", "delivered_to_client", T0, sender="b\u00f6b@example.net/ph\none",
                  stanza_id="s\x01", endpoint="ep_1"),
        replace(evidence(tenant, "m3", "server_acknowledged", T0)[0], raw_ref="raw_1", notes=("n\u00e9",)),
    ]
    linker = ChainLinker(lambda _sql, _params: None, {tenant: (None, GENESIS)}, lambda _key: raw_digest)
    rows = []
    for seq, event in enumerate(events, 1):
        row = event_row(event.placed(seq, T0 + timedelta(seconds=seq)))
        chain = linker.values(row)
        linker.advance(tenant, event.event_id, chain)
        rows.append(dict(zip(EVENT_COLUMNS + CHAIN_COLUMNS, row + chain, strict=True)))
    assert rows == _spec_chain(rows, raw_digest)
    assert len({row["personal_salt"] for row in rows}) == len(rows)
    assert all(len(bytes.fromhex(row["personal_salt"])) == 16 for row in rows)
    checked = walk(rows)
    assert checked.failure is None and checked.entries == len(rows)


def test_random_rows_get_the_specified_chain_values():
    """Every text column with awkward values (quotes, backslashes, control characters, non-ASCII, empty,
    None), so that the pieces the store encodes once and splices are checked against the spec's form."""
    rng = random.Random(16)
    alphabet = ["a", '"', "\\", "\n", "\x01", "\x1f", "\u00e9", "\u2603", "\U0001f600", "/", " ", "\u2028"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(5)))

    def maybe() -> str | None:
        return rng.choice([None, text()])

    tenant = "t" + text()
    linker = ChainLinker(lambda _sql, _params: None, {tenant: (None, GENESIS)}, lambda _key: "cd" * 32)
    rows = []
    for seq in range(1, 301):
        row = {name: maybe() for name in EVENT_COLUMNS}
        row.update(seq=seq, tenant_id=tenant, event_id=f"e{seq}{text()}")
        row.update({name: rng.randrange(2) for name in ("late", "inferred", "emitted")})
        chain = linker.values(tuple(row[name] for name in EVENT_COLUMNS))
        linker.advance(tenant, row["event_id"], chain)
        rows.append(dict(row, **dict(zip(CHAIN_COLUMNS, chain, strict=True))))
    assert rows == _spec_chain(rows, "cd" * 32)


def test_a_row_orjson_cannot_write_alike_takes_the_canonical_encoder():
    """A value outside str/int/bool/None anywhere in the row (a float, a str subclass) sends both digests
    through ``canonical_json``: the linker's values stay the model's."""

    class Text(str):
        pass

    tenant = "t"
    base = {name: None for name in EVENT_COLUMNS}
    base.update(seq=1, tenant_id=tenant, event_id="e1", late=0, inferred=1, emitted=1)
    for odd in ({"confidence": 1e-07}, {"fact": Text("{}")}, {"scope": Text("caf\u00e9")}):
        row = dict(base, **odd)
        linker = ChainLinker(lambda _sql, _params: None, {tenant: (None, GENESIS)})
        values = linker.values(tuple(row[name] for name in EVENT_COLUMNS))
        chain = dict(zip(CHAIN_COLUMNS, values, strict=True))
        entry = dict(row, **chain)
        salt = bytes.fromhex(chain["personal_salt"])
        assert chain["personal_sha256"] == salted_digest(salt, [row[name] for name in PERSONAL_COLUMNS])
        assert chain["entry_hash"] == content_digest([entry[name] for name in CONTENT_COLUMNS])
        assert chain["chain_hash"] == link(GENESIS, chain["entry_hash"])


def test_the_linker_takes_the_content_columns_from_the_row():
    extended = ("xc-chain-1", "raw_sha256", "prev_event_id", *EVENT_COLUMNS, "personal_sha256")
    assert _CONTENT(extended) == ("xc-chain-1", *CONTENT_COLUMNS)
    assert _PERSONAL(extended) == PERSONAL_COLUMNS


def test_salts_are_fresh_across_blocks_and_threads():
    salts = SaltSource(block=4)
    taken: list[tuple[bytes, str]] = []

    def take(count: int) -> None:
        taken.extend(salts.take() for _ in range(count))

    threads = [threading.Thread(target=take, args=(250,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 1000 and len({raw for raw, _text in taken}) == 1000
    assert all(len(raw) == 16 and raw.hex() == text for raw, text in taken)


def test_a_block_of_salts_holds_at_least_two():
    salts = SaltSource(block=2)
    taken = [salts.take() for _ in range(5)]
    assert len({raw for raw, _text in taken}) == 5 and all(raw.hex() == text for raw, text in taken)
    with pytest.raises(ValueError):
        SaltSource(block=1)


def test_a_forked_child_draws_salts_of_its_own():
    salts = SaltSource()
    salts.take()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, salts.take()[0])
        os._exit(0)
    os.close(write)
    _pid, status = os.waitpid(child, 0)
    from_child = os.read(read, 16)
    os.close(read)
    assert status == 0 and len(from_child) == 16
    assert from_child != salts.take()[0]


def test_an_untouched_log_verifies_with_its_checkpoints(store, tenant):
    ids = append_log(store, tenant)
    store.create_checkpoint(tenant, KEY, T0)
    append_log(store, "other-" + tenant, messages=2)  # another tenant's chain is separate
    report = store.verify_chain(tenant, KEY.public_key())
    assert report.ok, report.failure
    assert (report.entries, report.checkpoints, report.head_event_id) == (len(ids), 1, ids[-1])
    assert report.signatures_checked


def test_a_duplicate_append_does_not_advance_the_chain(store, tenant):
    ids = append_log(store, tenant, messages=1)
    [event] = evidence(
        tenant, "m0", "delivered_to_client", T0, sender="bob0@example.net/phone", stanza_id="s0"
    )
    assert store.append_evidence([event]).duplicates == (event.event_id,)
    assert store.verify_chain(tenant).ok and store.verify_chain(tenant).entries == len(ids)


def run_writers(writer: Callable[[int], object], count: int, timeout: float) -> None:
    """``writer(0)`` .. ``writer(count - 1)``, each on a thread of its own; fails if any raised or hung."""
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            writer(w)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not errors and not any(t.is_alive() for t in threads), errors


def test_concurrent_writers_build_one_consistent_chain(store, tenant):
    def writer(w: int) -> None:
        for n in range(15):
            store.append_evidence(evidence(tenant, f"w{w}-{n}", "server_acknowledged", T0))

    run_writers(writer, 4, timeout=60)
    report = store.verify_chain(tenant)
    assert report.ok, report.failure
    assert report.entries == 60


def test_replicas_appending_for_two_tenants_build_consistent_chains(store_factory, tenant):
    """Writers on stores of their own (as replicas are), interleaving two tenants, one or several events per
    append: on PostgreSQL the head of the tenant that appended last comes with the feed counter, the other
    tenant's is read from the log."""
    tenants = (tenant, "other-" + tenant)
    replicas = [store_factory.open() for _ in range(3)]
    stored = [replicas[0].bulk_append(evidence(tenant, "bulk", "server_acknowledged", T0))]

    def writer(w: int) -> None:
        for n in range(12):
            about = tenants[(w + n) % 2]
            events = evidence(about, f"r{w}-{n}", "server_acknowledged", T0)
            if n % 3 == 0:
                events += evidence(about, f"r{w}-{n}", "delivered_to_client", T0,
                                   sender=f"bob{w}@example.net/a", stanza_id=f"s{w}-{n}")
            stored.append(len(replicas[w].append_evidence(events).stored))

    run_writers(writer, len(replicas), timeout=60)
    reports = [replicas[0].verify_chain(t) for t in tenants]
    assert all(report.ok for report in reports), [report.failure for report in reports]
    assert sum(report.entries for report in reports) == sum(stored) > 36


def test_replicas_appending_in_group_commit_batches_build_consistent_chains(store_factory, tenant):
    """Replicas each appending from 8 tasks on its own event loop with group commit, two tenants, some parts
    of a batch rolled back: on PostgreSQL a batch moves the counter's head once, at its commit (after a
    rolled-back part, to the log's last entry), and the next batch of any replica links to it. SQLite has
    one replica."""
    tenants = (tenant, "other-" + tenant)
    replicas = [store_factory.open() for _ in range(1 if store_factory.backend == "sqlite" else 3)]
    stored: list[int] = []

    async def batches(store, w: int) -> None:
        store.enable_group_commit(asyncio.get_running_loop())

        async def task(t: int) -> None:
            for n in range(6):
                about, message = tenants[(w + t + n) % 2], f"g{w}-{t}-{n}"
                if (t + n) % 5 == 4:
                    with pytest.raises(RuntimeError), store.transaction():
                        store.append_evidence(evidence(about, message, "server_acknowledged", T0))
                        raise RuntimeError("this part of the batch is rolled back")
                else:
                    stored.append(len(store.append_evidence(
                        evidence(about, message, "server_acknowledged", T0)).stored))
                await store.durable()

        try:
            await asyncio.gather(*(task(t) for t in range(8)))
        finally:
            store.disable_group_commit()

    run_writers(lambda w: asyncio.run(batches(replicas[w], w)), len(replicas), timeout=120)
    late = store_factory.open()
    for about in tenants:
        stored.append(len(late.append_evidence(evidence(about, "after", "server_acknowledged", T0)).stored))
    reports = [late.verify_chain(t) for t in tenants]
    assert all(report.ok for report in reports), [report.failure for report in reports]
    assert sum(report.entries for report in reports) == sum(stored) > 30 * len(replicas)


def test_a_changed_entry_is_named(store_factory, tenant):
    store = store_factory.open()
    ids = append_log(store, tenant)
    tamper(
        store_factory, [("UPDATE evidence_events SET subclass = ? WHERE event_id = ?", ("success.x", ids[3]))]
    )
    failure = store.verify_chain(tenant).failure
    assert failure is not None and (failure.kind, failure.event_id) == ("changed", ids[3])


@pytest.mark.parametrize(
    ("column", "value"),
    [("sender_jid", "mallory@example.net/x"), ("sender_resource", "x"),
     ("grade_dimensions", '{"strength":"strong"}')],
)
def test_a_changed_sender_or_grade_is_named(store_factory, tenant, column, value):
    """The sender (issue 11's columns) is covered through the personal digest, the grade directly."""
    store = store_factory.open()
    ids = append_log(store, tenant)
    tamper(store_factory, [(f"UPDATE evidence_events SET {column} = ? WHERE event_id = ?", (value, ids[4]))])
    failure = store.verify_chain(tenant).failure
    assert failure is not None and (failure.kind, failure.event_id) == ("changed", ids[4])


def test_a_changed_fact_is_named(store_factory, tenant):
    store = store_factory.open()
    ids = append_log(store, tenant)
    tamper(
        store_factory,
        [("UPDATE evidence_events SET fact = ? WHERE event_id = ?", ('{"kind":"marker"}', ids[6]))],
    )
    failure = store.verify_chain(tenant).failure
    assert failure is not None and (failure.kind, failure.event_id) == ("changed", ids[6])


def test_a_removed_entry_is_named(store_factory, tenant):
    store = store_factory.open()
    ids = append_log(store, tenant)
    tamper(store_factory, [("DELETE FROM evidence_events WHERE event_id = ?", (ids[4],))])
    failure = store.verify_chain(tenant).failure
    assert failure is not None and (failure.kind, failure.event_id) == ("removed", ids[4])


def test_a_removed_last_entry_is_named_by_the_checkpoint_covering_it(store_factory, tenant):
    store = store_factory.open()
    ids = append_log(store, tenant)
    store.create_checkpoint(tenant, KEY, T0)
    tamper(store_factory, [("DELETE FROM evidence_events WHERE event_id = ?", (ids[-1],))])
    failure = store.verify_chain(tenant, KEY.public_key()).failure
    assert failure is not None and (failure.kind, failure.event_id) == ("removed", ids[-1])


def test_reordered_entries_are_named(store_factory, tenant):
    store = store_factory.open()
    ids = append_log(store, tenant)
    a, b = ids[2], ids[3]
    seq = {e.event_id: e.seq for e in (store.get_event(tenant, a), store.get_event(tenant, b))}
    tamper(
        store_factory,
        [
            ("UPDATE evidence_events SET seq = ? WHERE event_id = ?", (-1, a)),
            ("UPDATE evidence_events SET seq = ? WHERE event_id = ?", (seq[a], b)),
            ("UPDATE evidence_events SET seq = ? WHERE event_id = ?", (seq[b], a)),
        ],
    )
    failure = store.verify_chain(tenant).failure
    assert failure is not None and (failure.kind, failure.event_id) == ("reordered", b)


def test_a_rehashed_entry_is_caught_by_the_next_link(store_factory, tenant):
    """Changing an entry and its entry hash breaks the chain hash stored with it."""
    store = store_factory.open()
    ids = append_log(store, tenant)
    tamper(
        store_factory, [("UPDATE evidence_events SET entry_hash = ? WHERE event_id = ?", ("ab" * 32, ids[5]))]
    )
    failure = store.verify_chain(tenant).failure
    assert failure is not None and failure.event_id == ids[5]


def test_a_forged_checkpoint_signature_is_refused(store_factory, tenant):
    store = store_factory.open()
    append_log(store, tenant, messages=2)
    checkpoint = store.create_checkpoint(tenant, KEY, T0)
    tamper(
        store_factory,
        [("UPDATE chain_checkpoints SET entries = ? WHERE checkpoint_id = ?", (3, checkpoint.checkpoint_id))],
    )
    failure = store.verify_chain(tenant, KEY.public_key()).failure
    assert failure is not None and (failure.kind, failure.event_id) == (
        "checkpoint",
        checkpoint.checkpoint_id,
    )
    other = Ed25519PrivateKey.generate()
    assert store.verify_chain(tenant, other.public_key()).failure.kind == "checkpoint"


def test_purged_raw_stanzas_and_an_anonymized_participant_still_verify(store_factory, tenant):
    """§28: the chain covers the raw stanza's digest and a salted digest of the personal columns."""
    store = store_factory.open()
    raw = store.record_raw(tenant, "client", "<message from='bob@example.net/phone' id='s1'/>", T0)
    events = evidence(tenant, "m9", "delivered_to_client", T0, sender="bob@example.net/phone", stanza_id="s1")
    stored = store.append_evidence([replace(e, raw_ref=raw.raw_event_id) for e in events]).stored
    ids = append_log(store, tenant)
    store.create_checkpoint(tenant, KEY, T0)
    assert store.verify_chain(tenant).raw_checked == 1

    store.purge(T0 + timedelta(days=30), timedelta(days=1), None)
    assert store.anonymize_participant(tenant, "participant-1") > 0
    report = store.verify_chain(tenant, KEY.public_key())
    assert report.ok, report.failure
    assert (report.raw_purged, report.anonymized) == (1, 5)  # m9 and messages 1, 3
    changed = store.get_event(tenant, ids[2])
    assert "example.net" not in str(changed.fact) and changed.participant_id.startswith("anon-")
    assert stored[0].raw_ref == raw.raw_event_id


def test_a_changed_raw_stanza_is_named_by_the_entry_covering_it(store_factory, tenant):
    store = store_factory.open()
    raw = store.record_raw(tenant, "client", "<message id='s1'/>", T0)
    [event] = evidence(tenant, "m9", "delivered_to_client", T0)
    store.append_evidence([replace(event, raw_ref=raw.raw_event_id)])
    tamper(
        store_factory,
        [("UPDATE raw_events SET content = ? WHERE raw_event_id = ?", ("<x/>", raw.raw_event_id))],
    )
    failure = store.verify_chain(tenant).failure
    assert failure is not None and (failure.kind, failure.event_id) == ("raw_changed", event.event_id)


@pytest.mark.parametrize("rows", [0, 3])
def test_a_checkpoint_signs_the_head_and_its_position(store, tenant, rows):
    ids = append_log(store, tenant, messages=rows)
    checkpoint = store.create_checkpoint(tenant, KEY, T0)
    assert checkpoint.entries == len(ids)
    assert checkpoint.head_event_id == (ids[-1] if ids else None)
    assert store.list_checkpoints(tenant) == [checkpoint]


def test_two_store_objects_appending_in_turn_keep_one_chain(store_factory, tenant):
    """Each object remembers its last head; the other's appends in between must make it read again."""
    first, second = store_factory.open(), store_factory.open()
    for n in range(6):
        writer = first if n % 2 == 0 else second
        writer.append_evidence(evidence(tenant, f"m{n}", "server_acknowledged", T0))
    report = first.verify_chain(tenant)
    assert report.ok, report.failure
    assert report.entries == 6


def test_a_rolled_back_append_leaves_no_dangling_link(store, tenant):
    store.append_evidence(evidence(tenant, "m0", "server_acknowledged", T0))
    with pytest.raises(RuntimeError), store.transaction():
        store.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0))
        raise RuntimeError("the action failed after its evidence was appended")
    store.append_evidence(evidence(tenant, "m2", "server_acknowledged", T0))
    report = store.verify_chain(tenant)
    assert report.ok, report.failure
    assert report.entries == 2


async def test_a_rolled_back_append_inside_a_group_commit_batch(store, tenant):
    """With group commit, SQLite hands out positions from memory and keeps them after a rollback."""
    store.enable_group_commit(asyncio.get_running_loop())
    try:
        store.append_evidence(evidence(tenant, "m0", "server_acknowledged", T0))
        with pytest.raises(RuntimeError), store.transaction():
            store.append_evidence(evidence(tenant, "m1", "server_acknowledged", T0))
            raise RuntimeError("rolled back")
        store.append_evidence(evidence(tenant, "m2", "server_acknowledged", T0))
        await store.durable()
    finally:
        store.disable_group_commit()
    report = store.verify_chain(tenant)
    assert report.ok, report.failure
    assert report.entries == 2


@pytest.mark.parametrize("victim", [0, 2])
def test_an_entry_stripped_of_its_hashes_is_named(store_factory, tenant, victim):
    """Rows from before the chain have no hashes; stripping a chained entry's hashes is not one of them."""
    store = store_factory.open()
    ids = append_log(store, tenant, messages=2)
    strip = "UPDATE evidence_events SET entry_hash = NULL, chain_hash = NULL WHERE event_id = ?"
    tamper(store_factory, [(strip, (ids[victim],))])
    failure = store.verify_chain(tenant).failure
    assert failure is not None and (failure.kind, failure.event_id) == ("unchained", ids[victim])
