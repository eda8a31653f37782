"""The recorder moves an attempt's state to that of its strongest evidence, whoever else writes it: a
recorder that knows nothing of an attempt guesses it has no decider yet, and the conditional write corrects
a wrong guess from the store."""

from __future__ import annotations

from dataclasses import replace

from store_helpers import PRECEDENCE, T0, classification

from xmpp_connect.evidence.recorder import Evidence, Recorder
from xmpp_connect.model.evidence import DedupeBasis
from xmpp_connect.store.records import XmppAttempt


def _attempt(store, tenant: str, attempt_id: str) -> None:
    store.create_attempt(
        XmppAttempt(tenant, attempt_id, "m1", "acct", "svc@example.net/a", "bob@example.net", "bare_jid",
                    T0, T0, state="accepted_by_adapter")
    )


def _evidence(tenant: str, scenario: str, attempt_id: str = "m1-a1") -> Evidence:
    return Evidence(tenant, classification(scenario), T0, message_id="m1", attempt_id=attempt_id)


def test_a_fresh_attempt_takes_its_first_state_without_a_read(store, tenant, monkeypatch):
    _attempt(store, tenant, "m1-a1")
    reads: list[str] = []
    read = store.attempt_state_event
    monkeypatch.setattr(store, "attempt_state_event", lambda t, a: reads.append(a) or read(t, a))
    [event] = Recorder(store, PRECEDENCE).record(_evidence(tenant, "server_acknowledged")).stored
    assert read(tenant, "m1-a1") == ("server_acknowledged", event.event_id)
    assert reads == []


def test_a_wrong_guess_is_corrected_from_the_store(store, tenant):
    _attempt(store, tenant, "m1-a1")
    first, other = Recorder(store, PRECEDENCE), Recorder(store, PRECEDENCE)
    [acked] = first.record(_evidence(tenant, "server_acknowledged")).stored

    other.record(_evidence(tenant, "adapter_accepted"))  # weaker than the decider the other does not know
    assert store.attempt_state_event(tenant, "m1-a1") == ("server_acknowledged", acked.event_id)
    [delivered] = other.record(_evidence(tenant, "delivered_to_client")).stored
    assert store.attempt_state_event(tenant, "m1-a1") == ("delivered_to_client", delivered.event_id)

    [displayed] = first.record(_evidence(tenant, "displayed_by_client")).stored  # its guess is stale now
    assert store.attempt_state_event(tenant, "m1-a1") == ("displayed_by_client", displayed.event_id)
    first.record(_evidence(tenant, "server_acknowledged"))
    assert store.attempt_state_event(tenant, "m1-a1") == ("displayed_by_client", displayed.event_id)


def test_evidence_about_an_attempt_not_stored_sets_no_state(store, tenant):
    appended = Recorder(store, PRECEDENCE).record(_evidence(tenant, "delivered_to_client", "missing"))
    assert len(appended.stored) == 1
    assert store.attempt_state_event(tenant, "missing") is None


def _new_attempt(tenant: str, attempt_id: str) -> XmppAttempt:
    return XmppAttempt(tenant, attempt_id, "m1", "acct", "svc@example.net/a", "bob@example.net", "bare_jid",
                       T0, T0, state="accepted_by_adapter")


def test_an_attempt_inserted_with_its_first_evidence_carries_the_state_it_decides(store, tenant, monkeypatch):
    updates: list[str] = []
    update = store.set_attempt_state
    monkeypatch.setattr(store, "set_attempt_state", lambda *a: updates.append(a[1]) or update(*a))
    recorder = Recorder(store, PRECEDENCE)
    [accepted] = recorder.record(_evidence(tenant, "adapter_accepted"), _new_attempt(tenant, "m1-a1")).stored
    assert store.attempt_state_event(tenant, "m1-a1") == ("accepted_by_adapter", accepted.event_id)
    assert store.get_attempt(tenant, "m1-a1").to_jid == "bob@example.net"
    assert updates == []
    [acked] = recorder.record(_evidence(tenant, "server_acknowledged")).stored  # the decider is known
    assert store.attempt_state_event(tenant, "m1-a1") == ("server_acknowledged", acked.event_id)
    assert updates == ["m1-a1"]


def test_an_attempt_whose_first_evidence_is_a_repeat_is_inserted_without_a_decider(store, tenant):
    recorder = Recorder(store, PRECEDENCE)
    once = DedupeBasis("adapter_accepted", "", "s1")
    evidence = replace(_evidence(tenant, "adapter_accepted"), dedupe=once)
    recorder.record(evidence)
    assert not recorder.record(evidence, _new_attempt(tenant, "m1-a1")).stored
    assert store.attempt_state_event(tenant, "m1-a1") == ("accepted_by_adapter", None)
