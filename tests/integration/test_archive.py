"""§7.7 against a real Prosody archive: after a restart the adapter pages through its MAM archive (XEP-0059)
to reconstruct what happened to messages it lost track of; a match is reconstructability, never awareness."""

from __future__ import annotations

from collections.abc import Callable

from adapter import AdapterUnderTest, explain, of_kind
from prosody import ProsodyServer, TestUser
from recipients import Recipient

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.policy.commands import CommandTable
from xmpp_connect.providers.archive import ArchiveQuery


async def test_archive_query_after_a_restart_reconstructs_sent_messages(
    live_prosody: ProsodyServer, sender_user: TestUser, recipient_user: TestUser, classifier: Classifier,
    commands: CommandTable, recipient: Callable[..., Recipient],
) -> None:
    before = AdapterUnderTest(live_prosody, sender_user, classifier, commands)
    assert await before.start()
    phone = await recipient(recipient_user).online()
    sent = [before.send(recipient_user.jid, body=f"Incident {n}") for n in range(5)]
    for record in sent:
        await before.wait_for(of_kind("receipt", record.stanza_id))
    phone.reply(before.provider.bound_jid or sender_user.jid, "unrelated note")
    await before.wait_for(of_kind("inbound_message"))
    await before.stop()

    # A restart: a new provider and pipeline; only the outbound index survived (as the store would).
    after = AdapterUnderTest(live_prosody, sender_user, classifier, commands, index=before.index)
    assert await after.start()
    try:
        result = await after.provider.query_archive(ArchiveQuery(with_jid=recipient_user.jid, page_size=2))
        # Prosody archives our five messages, the five receipts and the reply: eleven, in six pages of two.
        assert (result.complete, result.pages, result.error_condition) == (True, 6, None)
        matches = [o for o in after.observations if o.fact["kind"] == "archive_match"]
        assert len(matches) == 11
        for record in sent:
            (match,) = after.about(record.stanza_id, "archive_match")
            assert match.fact["correlated"] is True and match.fact["delayed"] is True
            assert match.fact["sender_is_addressee"] is False, "the archived copy is our own message"
            assert match.classification.scenario == "archived_only", explain(match)
            assert match.classification.assessment.category == "undef"
            assert match.classification.events == (), "reconstructability, never awareness"
        others = [m for m in matches if m.outbound is None]
        assert len(others) == 6 and all(m.fact["correlated"] is False for m in others)
        assert all(m.classification.events == () for m in others)
    finally:
        await after.stop()


async def test_archive_query_stops_at_max_pages(adapter: AdapterUnderTest, recipient_user: TestUser) -> None:
    for n in range(3):
        adapter.send(recipient_user.jid, body=f"Stored {n}")
    await adapter.wait_for(lambda o: sum(x.fact["kind"] == "sm_ack" for x in adapter.observations) == 3)
    result = await adapter.provider.query_archive(
        ArchiveQuery(with_jid=recipient_user.jid, page_size=1, max_pages=2))
    assert (result.complete, result.pages) == (False, 2)
    await adapter.wait_for(lambda o: sum(x.fact["kind"] == "archive_match" for x in adapter.observations) > 1)
    matches = [o for o in adapter.observations if o.fact["kind"] == "archive_match"]
    assert len(matches) == 2, "one archived message per page, two pages"
    assert all(m.classification.scenario == "archived_only" for m in matches), explain(matches[0])
