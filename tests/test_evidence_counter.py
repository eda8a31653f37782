"""The evidence counter adds a page of the feed once per label set, each event counted once."""

from __future__ import annotations

from xmpp_connect.app.metrics import count_entries
from xmpp_connect.model.metrics import EVIDENCE_EVENTS
from xmpp_connect.store.figures import FeedEntry


def counted(*labels: str) -> float:
    return float(EVIDENCE_EVENTS.labels(*labels)._value.get())


def test_a_page_adds_each_event_once_by_its_labels() -> None:
    receipt = ("test.counter.receipt", "success", "delivered_to_client")
    ack = ("test.counter.ack", "undef", "server_acknowledged")
    before = counted(*receipt), counted(*ack)
    page = [FeedEntry(10, *receipt), FeedEntry(11, *ack), FeedEntry(14, *receipt), FeedEntry(15, *receipt)]

    assert count_entries(page) == 15
    assert (counted(*receipt), counted(*ack)) == (before[0] + 3, before[1] + 1)
