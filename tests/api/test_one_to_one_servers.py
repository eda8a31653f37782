"""The one-to-one evidence cases on both real servers (Prosody 0.12 and ejabberd 23.01), over the HTTP API of
an in-process service: a XEP-0184 receipt is delivery, a XEP-0333 displayed marker is opening (not
comprehension), and a message to an unknown account comes back as a permanent stanza error."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ejabberd import EjabberdServer
from prosody import ProsodyServer
from recipients import Recipient
from test_e2e_prosody import WAIT, Adapter, send, start_service, stop_service, write_config

pytestmark = pytest.mark.prosody


@pytest.fixture
async def adapter(xmpp_server: ProsodyServer | EjabberdServer, tmp_path: Path) -> AsyncIterator[Adapter]:
    user = xmpp_server.fresh_user("svc")
    config_path = write_config(tmp_path, xmpp_server, user)  # type: ignore[arg-type]
    service, http = await start_service(config_path, user)
    under_test = Adapter(xmpp_server, user, config_path, service, http)  # type: ignore[arg-type]
    yield under_test
    await stop_service(under_test.service, under_test.http)


@pytest.fixture
async def phone(xmpp_server: ProsodyServer | EjabberdServer) -> AsyncIterator[Recipient]:
    client = Recipient(xmpp_server, xmpp_server.fresh_user("rcpt"), "phone")  # type: ignore[arg-type]
    yield await client.online()
    await client.offline()


async def test_receipt_is_delivery(adapter: Adapter, phone: Recipient) -> None:
    message_id = (await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid)))["xmpp_message_id"]
    await phone.next_message(WAIT)
    accepted = await adapter.wait_for_event(message_id, "notification.endpoint.accepted")
    assert accepted["assessment"]["subclass"] == "success.delivered_to_client"
    ack = await adapter.wait_for_event(message_id, "notification.attempt.accepted_by_provider",
                                       "undef.server_acknowledged_only")
    assert ack["scenario"] == "server_acknowledged", "a server ack is not delivery"


async def test_displayed_marker_is_opened(adapter: Adapter, phone: Recipient) -> None:
    message_id = (await adapter.act(send(uuid.uuid4().hex[:8], phone.user.jid)))["xmpp_message_id"]
    delivered = await phone.next_message(WAIT)
    phone.send_displayed(adapter.user.jid + "/adapter", delivered["id"])
    opened = await adapter.wait_for_event(message_id, "interaction.notification.opened")
    assert opened["assessment"]["subclass"] == "success.displayed_by_client"
    assessment = await adapter.wait_for_subclass(message_id, lambda s: s == "success.displayed_by_client")
    assert assessment["category"] == "success"


async def test_unknown_account_is_a_permanent_stanza_error(adapter: Adapter) -> None:
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@localhost"
    message_id = (await adapter.act(send(uuid.uuid4().hex[:8], nobody)))["xmpp_message_id"]
    rejected = await adapter.wait_for_event(message_id, "notification.endpoint.rejected_permanent")
    assert rejected["assessment"]["category"] == "fail"
