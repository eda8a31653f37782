"""Privacy (§28): metadata-only mode, raw redaction on by default, retention purge, nothing secret logged."""

from __future__ import annotations

import logging
from dataclasses import replace

import psycopg
from pg import PG_DSN
from store_helpers import T0, evidence, minutes

from xmpp_connect.store import StoreOptions
from xmpp_connect.store.records import InboundMessage, PresenceState
from xmpp_connect.xmpp.redaction import redact_stanza

BODY = "SECRET-BODY-7f3a please wire the money"
PASSWORD = "hunter2-credential-x9"
STANZA = (
    f'<message xmlns="jabber:client" from="bob@example.net/phone" to="adapter@example.org"'
    f' id="in-1" type="chat">'
    f"<body>{BODY}</body><request xmlns='urn:xmpp:receipts'/></message>"
)
REGISTER = (
    '<iq xmlns="jabber:client" type="set" id="reg1"><query xmlns="jabber:iq:register">'
    f"<username>bob</username><password>{PASSWORD}</password></query></iq>"
)


def _everything_stored(store_factory) -> str:
    """Every byte the backend holds for this store: the SQLite files, or every row of every table."""
    if store_factory.backend == "sqlite":
        from pathlib import Path

        base = Path(store_factory.location)
        files = [base, base.with_name(base.name + "-wal")]
        return "".join(f.read_bytes().decode("latin-1") for f in files if f.exists())
    with psycopg.connect(PG_DSN) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (store_factory.location,),
        ).fetchall()
        return "".join(
            str(conn.execute(f'SELECT * FROM "{store_factory.location}"."{name}"').fetchall())
            for (name,) in tables
        )


def test_metadata_only_mode_stores_no_body_anywhere(store_factory, tenant):
    store = store_factory.open(StoreOptions(metadata_only=True, redact_raw=False))
    raw = store.record_raw(tenant, "stream", STANZA, T0)
    inbound = store.record_inbound(
        InboundMessage(
            tenant,
            "in1",
            "bob@example.net/phone",
            "adapter@example.org",
            "chat",
            T0,
            "free_text",
            BODY,
            "in-1",
            raw_ref=raw.raw_event_id,
        )
    )
    store.record_presence(PresenceState(tenant, "bob@example.net", "away", T0, "phone", status_text=BODY))
    store.append_evidence(evidence(tenant, "m1", "reply_received", T0, command="free_text"))

    assert inbound.body_text is None and raw.redacted
    assert store.presence(tenant, "bob@example.net")[0].status_text is None
    assert "SECRET-BODY" not in _everything_stored(store_factory)


def test_raw_stanzas_are_redacted_by_default(store, tenant):
    ref = store.record_raw(tenant, "stream", STANZA, T0)
    _, content = store.get_raw(tenant, ref.raw_event_id)
    assert ref.redacted and BODY not in content
    assert "urn:xmpp:receipts" in content and 'id="in-1"' in content

    _, credentials = store.get_raw(tenant, store.record_raw(tenant, "client", REGISTER, T0).raw_event_id)
    assert PASSWORD not in credentials


def test_a_stanza_recorded_at_each_event_about_it_is_redacted_alike_each_time(store, tenant):
    """A sent message is kept at each event about it (written, acked, unknown): each copy is the redacted
    text, and the digest the chain covers is that text's, however often it is recorded."""
    refs = [store.record_raw(tenant, "stream", STANZA, T0) for _ in range(3)]
    contents = {store.get_raw(tenant, ref.raw_event_id)[1] for ref in refs}
    assert contents == {redact_stanza(STANZA)} and BODY not in contents.pop()
    assert len({ref.raw_event_id for ref in refs}) == 3 and all(ref.redacted for ref in refs)
    other = STANZA.replace("in-1", "in-2")
    _, content = store.get_raw(tenant, store.record_raw(tenant, "stream", other, T0).raw_event_id)
    assert content == redact_stanza(other) and 'id="in-2"' in content
    cited = [replace(evidence(tenant, f"m{i}", "delivered_to_client", T0)[0], raw_ref=ref.raw_event_id)
             for i, ref in enumerate(refs)]
    store.append_evidence(cited)
    report = store.verify_chain(tenant)
    assert report.ok and report.raw_checked == 3, report.failure


def test_redaction_can_be_turned_off_outside_metadata_only_mode(store_factory, tenant):
    store = store_factory.open(StoreOptions(redact_raw=False))
    ref = store.record_raw(tenant, "stream", STANZA, T0)
    assert not ref.redacted and BODY in store.get_raw(tenant, ref.raw_event_id)[1]


def test_retention_purges_raw_content_and_presence_history(store, tenant):
    old = store.record_raw(tenant, "stream", STANZA, T0)
    new = store.record_raw(tenant, "stream", STANZA, T0 + minutes(60 * 24 * 10))
    store.record_presence(PresenceState(tenant, "bob@example.net", "available", T0, "phone"))
    store.record_presence(
        PresenceState(tenant, "bob@example.net", "away", T0 + minutes(60 * 24 * 10), "phone")
    )

    report = store.purge(
        T0 + minutes(60 * 24 * 11),
        raw_retention=minutes(60 * 24 * 7),
        presence_retention=minutes(60 * 24 * 7),
    )

    assert (report.raw_events_purged, report.presence_history_deleted) == (1, 1)
    purged_ref, purged_content = store.get_raw(tenant, old.raw_event_id)
    assert purged_content is None and purged_ref.purged_at is not None
    assert store.get_raw(tenant, new.raw_event_id)[1] is not None
    assert [p.availability for p in store.presence_history(tenant, "bob@example.net")] == ["away"]
    assert store.presence(tenant, "bob@example.net")[0].availability == "away"


def test_no_body_or_credential_reaches_a_log_line(store_factory, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    store = store_factory.open(StoreOptions(redact_raw=True))
    store.record_raw(tenant, "stream", STANZA, T0)
    store.record_raw(tenant, "client", REGISTER, T0)
    store.record_inbound(
        InboundMessage(
            tenant, "in1", "bob@example.net/phone", "adapter@example.org", "chat", T0, "free_text", BODY
        )
    )
    store.append_evidence(evidence(tenant, "m1", "reply_received", T0))
    store.add_dead_letter(tenant, "parse", "unparseable stanza", {"size": len(STANZA)})
    store.suppress(tenant, "bob@example.net", reason="STOP")
    store.purge(T0 + minutes(1), minutes(0), minutes(0))
    store.close()

    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert caplog.records, "the store logged nothing at all"
    for secret in ("SECRET-BODY", PASSWORD, "password=", "user=postgres"):
        assert secret not in text
    assert "bob@example.net" not in text
