"""Dead letters (nothing dropped, listable), endpoint quality (§25) from the log, schema migrations."""

from __future__ import annotations

from store_helpers import T0, evidence, minutes

from xmpp_connect.model.evidence import endpoint_ref
from xmpp_connect.policy.load import load_policy
from xmpp_connect.store.migrations import MIGRATIONS, Migration
from xmpp_connect.store.records import PresenceState

SIGNALS = load_policy().quality_signals


def test_dead_letters_are_kept_with_reason_and_paged(store_factory, tenant):
    store = store_factory.open()
    raw = store.record_raw(tenant, "stream", "<message><broken", T0)
    stages = ["parse", "correlate", "classify", "parse", "correlate"]
    made = [
        store.add_dead_letter(tenant, stage, f"reason {n}", {"n": n}, raw.raw_event_id)
        for n, stage in enumerate(stages)
    ]

    restarted = store_factory.open()
    first = restarted.list_dead_letters(tenant, limit=3)
    rest = restarted.list_dead_letters(tenant, cursor=first.next_cursor, limit=3)
    listed = first.dead_letters + rest.dead_letters
    assert [d.dead_letter_id for d in listed] == [d.dead_letter_id for d in made]
    assert rest.next_cursor is None
    assert (listed[2].stage, listed[2].reason, listed[2].detail, listed[2].raw_ref) == (
        "classify",
        "reason 2",
        {"n": 2},
        raw.raw_event_id,
    )
    assert restarted.get_raw(tenant, raw.raw_event_id)[1].startswith("<redacted")
    assert restarted.list_dead_letters("other").dead_letters == ()


def test_endpoint_quality_follows_the_log(store, tenant):
    jid = "bob@example.net"
    ref = endpoint_ref(tenant, jid)
    empty = store.endpoint_quality(tenant, jid, SIGNALS)
    assert (empty.jid_valid, empty.server_reachable, empty.last_delivery_receipt_at) == (None, None, None)

    store.append_evidence(
        evidence(tenant, "m1", "delivered_to_client", T0, sender="b@x/r", stanza_id="s", endpoint=ref)
    )
    store.append_evidence(
        evidence(
            tenant, "m2", "displayed_by_client", T0 + minutes(1), sender="b@x/r", stanza_id="s2", endpoint=ref
        )
    )
    store.append_evidence(
        evidence(tenant, "m3", "stanza_error.item_not_found", T0 + minutes(2), endpoint=ref)
    )
    store.append_evidence(evidence(tenant, "m4", "delivered_to_client", T0 + minutes(9), endpoint="ep_other"))
    store.record_presence(PresenceState(tenant, jid, "available", T0, "phone", subscription_state="both"))
    store.suppress(tenant, jid)

    quality = store.endpoint_quality(tenant, "Bob@example.net/phone", SIGNALS)
    assert quality.endpoint_ref == ref
    assert quality.last_delivery_receipt_at == T0
    assert quality.last_displayed_marker_at == T0 + minutes(1)
    assert quality.last_stanza_error_at == T0 + minutes(2)
    assert quality.last_presence_available_at == T0 and quality.last_presence_unavailable_at is None
    assert (quality.jid_valid, quality.server_reachable, quality.roster_known) == (True, True, True)
    assert quality.subscription_state == "both" and quality.suppression_state == "suppressed"
    assert quality.to_dict()["last_delivery_receipt_at"] == T0.isoformat()


def test_migrations_are_versioned_and_applied_once(store_factory):
    store = store_factory.open()
    assert store.schema_version() == MIGRATIONS[-1].version
    assert store_factory.open().migrate() == []

    extra = Migration(
        MIGRATIONS[-1].version + 1, "test column", ("CREATE TABLE migration_probe (id INTEGER)",)
    )
    assert store.migrate((*MIGRATIONS, extra)) == [extra.version]
    assert store.migrate((*MIGRATIONS, extra)) == []
    assert store.schema_version() == extra.version
