"""The attempt's state is set only while its deciding event is the one the writer compared against."""

from __future__ import annotations

from store_helpers import T0

from xmpp_connect.store.records import XmppAttempt


def test_the_state_moves_only_from_the_decider_the_writer_saw(store, tenant):
    store.create_attempt(
        XmppAttempt(tenant, "a1", "m1", "acct", "svc@example.net/a", "bob@example.net", "bare_jid", T0, T0,
                    state="accepted_by_adapter")
    )
    assert store.attempt_state_event(tenant, "a1") == ("accepted_by_adapter", None)
    assert store.set_attempt_state(tenant, "a1", "sent_to_server", "evt_1", None)
    assert not store.set_attempt_state(tenant, "a1", "server_acknowledged", "evt_2", None), "another moved it"
    assert store.attempt_state_event(tenant, "a1") == ("sent_to_server", "evt_1")
    assert store.set_attempt_state(tenant, "a1", "delivered_to_client", "evt_3", "evt_1")
    assert store.attempt_state_event(tenant, "a1") == ("delivered_to_client", "evt_3")
    assert store.get_attempt(tenant, "a1").state == "delivered_to_client"
    assert store.attempt_state_event(tenant, "missing") is None
