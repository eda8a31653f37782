"""A webhook subscription's stored position (store/webhooks.py): the delivery loop's advance is a
compare-and-set from the position it read, so a redelivery's rewind made meanwhile (on any replica) is not
overwritten, and a deleted subscription is never advanced."""

from __future__ import annotations

from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.webhooks import API_ORIGIN


def test_an_advance_only_moves_from_the_position_read(store: SqlStore, tenant: str) -> None:
    sub = store.add_webhook(tenant, "wh", "https://receiver.example/hook", [], "whsec_x", API_ORIGIN)
    assert sub is not None
    start = sub.position
    assert store.advance_webhook(tenant, "wh", start, start + 5)
    store.rewind_webhook(tenant, "wh", 1)
    assert not store.advance_webhook(tenant, "wh", start + 5, start + 9), "a rewind in between wins"
    stored = store.get_webhook(tenant, "wh")
    assert stored is not None and stored.position == 1
    assert store.advance_webhook(tenant, "wh", 1, 3)
    store.delete_webhook(tenant, "wh")
    assert not store.advance_webhook(tenant, "wh", 3, 4)
