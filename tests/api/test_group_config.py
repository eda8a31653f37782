"""Rooms, nodes and a component in the service configuration (issue 6): parsing, errors that name the field
and never echo a secret, the provider settings they become, and end to end over HTTP against a real Prosody:
a configured room joined at start gives room-level evidence, a configured component's message gets a
receipt classified as client delivery."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import REPO, LiveApp, default_policy
from prosody import COMPONENT_DOMAIN, MUC_DOMAIN, ProsodyServer, TestUser
from recipients import Recipient

from xmpp_connect.app.server import build_app
from xmpp_connect.app.service import AdapterService
from xmpp_connect.config.loader import config_from_dict, load_config
from xmpp_connect.config.settings import ConfigError, NodeConfig, RoomConfig, Secret
from xmpp_connect.providers.component import ComponentProvider
from xmpp_connect.providers.slixmpp_client import SlixmppProvider
from xmpp_connect.store.sqlite import SqliteStore

ENV = {"BOT_PW": "bot-pw-9a1f", "ROOM_PW": "room-pw-77c2", "COMP_SECRET": "comp-secret-3e8d",
       "TOKEN": "tok-1"}
TENANTS = [{"id": "ops", "token_env": "TOKEN", "accounts": ["notify"]}]
WAIT = 8.0


def client_account(**extra: Any) -> dict[str, Any]:
    return {"ref": "notify", "jid": "Alerts@example.net/adapter", "password_env": "BOT_PW", **extra}


def parse(account: dict[str, Any], tmp_path: Path) -> Any:
    return config_from_dict({"accounts": [account], "tenants": TENANTS}, tmp_path, ENV).accounts[0]


def test_rooms_and_nodes_are_read_with_their_defaults(tmp_path: Path) -> None:
    account = parse(client_account(
        rooms=[
            {"room_jid": "ops@conference.example.net", "password_env": "ROOM_PW", "history_stanzas": 0},
            {"room_jid": "board@conference.example.net", "nick": "bot", "join_at_start": False,
             "create": False, "non_anonymous": False, "members_only": True, "moderated": True,
             "persistent": False, "public": False},
        ],
        nodes=[{"service_jid": "pubsub.example.net", "node": "events", "create": True,
                "access_model": "whitelist", "publisher_model": "open", "subscribe": True},
               {"service_jid": "pubsub.example.net", "node": "audit"}],
        room_join_timeout=2, iq_timeout=1.5,
    ), tmp_path)
    ops, board = account.rooms
    assert ops == RoomConfig(room_jid="ops@conference.example.net", nick="alerts",
                             password=Secret("room-pw-77c2"), history_stanzas=0)
    assert board == RoomConfig(room_jid="board@conference.example.net", nick="bot", join_at_start=False,
                               create=False, non_anonymous=False, members_only=True, moderated=True,
                               persistent=False, public=False)
    assert account.nodes == (
        NodeConfig("pubsub.example.net", "events", create=True, access_model="whitelist",
                   publisher_model="open", subscribe=True),
        NodeConfig("pubsub.example.net", "audit", create=False, access_model="open",
                   publisher_model="publishers", subscribe=False),
    )
    assert (account.room_join_timeout, account.iq_timeout) == (2.0, 1.5)
    assert "room-pw-77c2" not in repr(account), "a room password never shows in a repr"


def test_provider_settings_carry_rooms_nodes_timeouts_and_tls_verification(tmp_path: Path) -> None:
    account = parse(client_account(
        verify_tls=False,
        rooms=[{"room_jid": "ops@conference.example.net", "password_env": "ROOM_PW", "nick": "ops-bot"}],
        nodes=[{"service_jid": "pubsub.example.net", "node": "events", "subscribe": True}],
        room_join_timeout=3, iq_timeout=4,
    ), tmp_path)
    provider = SlixmppProvider(account, lambda event: None)
    assert provider.config is account, "the provider takes the configured account as it is"
    assert "tls_verification_disabled" in provider.health().known_degradations
    room = account.rooms[0]
    assert (room.room_jid, room.nick) == ("ops@conference.example.net", "ops-bot")
    assert room.password is not None and room.password.reveal() == "room-pw-77c2"
    assert account.nodes == (NodeConfig("pubsub.example.net", "events", subscribe=True),)
    assert (account.room_join_timeout, account.iq_timeout) == (3.0, 4.0)
    assert account.room("OPS@conference.example.net/x") == room
    assert "room-pw-77c2" not in repr(account) and "bot-pw-9a1f" not in repr(account)


def test_a_component_account(tmp_path: Path) -> None:
    (tmp_path / "component.secret").write_text("comp-file-secret\n")
    account = parse({"ref": "notify", "provider": "component", "jid": "notify.example.net",
                     "secret_file": "component.secret", "iq_timeout": 2}, tmp_path)
    assert (account.provider, account.jid, account.host, account.port) == (
        "component", "notify.example.net", "127.0.0.1", 5347)
    assert account.secret == Secret("comp-file-secret") and account.password is None
    assert (account.require_tls, account.verify_tls) == (False, False), "a XEP-0114 stream is not TLS"
    assert account.iq_timeout == 2.0 and account.rooms == () and account.nodes == ()
    assert "comp-file-secret" not in repr(account)


def test_the_service_builds_each_account_kind_its_provider(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "storage": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite3")},
            "policy_dir": str(REPO),
            "accounts": [
                client_account(rooms=[{"room_jid": "ops@conference.example.net"}], iq_timeout=2),
                {"ref": "system", "provider": "component", "jid": "notify.example.net",
                 "secret_env": "COMP_SECRET", "port": 5348},
            ],
            "tenants": [{"id": "ops", "token_env": "TOKEN", "accounts": ["notify", "system"]}],
        },
        tmp_path,
        ENV,
    )
    service = AdapterService(config, SqliteStore(str(tmp_path / "store.sqlite3")), default_policy())
    client, component = service.providers["notify"], service.providers["system"]
    assert isinstance(client, SlixmppProvider) and isinstance(component, ComponentProvider)
    assert client.config.rooms[0].room_jid == "ops@conference.example.net" and client.config.iq_timeout == 2.0
    assert (component.config.jid, component.config.port, component.config.secret) == (
        "notify.example.net", 5348, Secret("comp-secret-3e8d"))


@pytest.mark.parametrize(
    ("account", "field"),
    [
        (client_account(rooms=[{"nick": "x"}]), "accounts[0].rooms[0].room_jid"),
        (client_account(rooms=[{"room_jid": "conference.example.net"}]), "accounts[0].rooms[0].room_jid"),
        (client_account(rooms=[{"room_jid": "ops@conference.example.net/me"}]),
         "accounts[0].rooms[0].room_jid"),
        (client_account(rooms=[{"room_jid": "ops@conference.example.net", "nick": ""}]),
         "accounts[0].rooms[0].nick"),
        (client_account(rooms=[{"room_jid": "ops@conference.example.net", "create": "yes"}]),
         "accounts[0].rooms[0].create"),
        (client_account(rooms=[{"room_jid": "ops@conference.example.net", "history_stanzas": -1}]),
         "accounts[0].rooms[0].history_stanzas"),
        (client_account(rooms=[{"room_jid": "ops@conference.example.net", "password_env": "UNSET"}]),
         "accounts[0].rooms[0].password_env"),
        (client_account(rooms=[{"room_jid": "a@c.example.net"}, {"room_jid": "A@c.example.net"}]),
         "accounts[0].rooms"),
        (client_account(rooms={"room_jid": "ops@conference.example.net"}), "accounts[0].rooms"),
        (client_account(nodes=[{"service_jid": "pubsub.example.net"}]), "accounts[0].nodes[0].node"),
        (client_account(nodes=[{"service_jid": "not a jid", "node": "n"}]),
         "accounts[0].nodes[0].service_jid"),
        (client_account(nodes=[{"service_jid": "pubsub.example.net", "node": "n", "access_model": "public"}]),
         "accounts[0].nodes[0].access_model"),
        (client_account(nodes=[{"service_jid": "pubsub.example.net", "node": "n", "publisher_model": "all"}]),
         "accounts[0].nodes[0].publisher_model"),
        (client_account(nodes=[{"service_jid": "p.example.net", "node": "n"}] * 2), "accounts[0].nodes"),
        (client_account(room_join_timeout=0), "accounts[0].room_join_timeout"),
        (client_account(iq_timeout="5s"), "accounts[0].iq_timeout"),
        (client_account(secret_env="COMP_SECRET"), "accounts[0].secret"),
        ({"ref": "notify", "provider": "sandbox", "jid": "a@sandbox.invalid", "rooms": []}, "accounts[0]"),
        ({"ref": "notify", "provider": "xep0114", "jid": "n.example.net"}, "accounts[0].provider"),
        ({"ref": "notify", "provider": "component", "jid": "n.example.net"}, "accounts[0]: secret_env"),
        ({"ref": "notify", "provider": "component", "jid": "bot@n.example.net", "secret_env": "COMP_SECRET"},
         "accounts[0].jid"),
        ({"ref": "notify", "provider": "component", "jid": "n.example.net", "secret_env": "COMP_SECRET",
          "password_env": "BOT_PW"}, "accounts[0].password_env"),
        ({"ref": "notify", "provider": "component", "jid": "n.example.net", "secret_env": "COMP_SECRET",
          "rooms": [{"room_jid": "ops@conference.example.net"}]}, "accounts[0].rooms"),
        ({"ref": "notify", "provider": "component", "jid": "n.example.net", "secret_env": "COMP_SECRET",
          "verify_tls": True}, "accounts[0].verify_tls"),
        ({"ref": "notify", "provider": "component", "jid": "n.example.net", "secret_env": "COMP_SECRET",
          "port": 0}, "accounts[0].port"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, account: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(account, tmp_path)
    assert str(error.value).startswith(field), str(error.value)
    assert not any(secret in str(error.value) for secret in ENV.values())


@pytest.mark.parametrize(
    "account",
    [
        client_account(rooms=[{"room_jid": "ops@conference.example.net", "password": "inline-room-pw"}]),
        {"ref": "notify", "provider": "component", "jid": "n.example.net", "secret": "inline-room-pw"},
    ],
)
def test_inline_room_password_and_component_secret_are_refused_unechoed(
    tmp_path: Path, account: dict[str, Any]
) -> None:
    with pytest.raises(ConfigError, match=r"inline secrets are not allowed") as error:
        parse(account, tmp_path)
    assert "inline-room-pw" not in str(error.value)


# ----------------------------------------------------------------- end to end against a real Prosody

ROOM_CONFIG = """\
storage: {{kind: sqlite, path: store.sqlite3}}
policy_dir: {repo}
accounts:
  - ref: notify
    jid: {jid}/adapter
    password_env: XC_PASSWORD
    port: {port}
    ca_certs: {ca}
    room_join_timeout: 3
    iq_timeout: 3
    rooms:
      - {{room_jid: {room}, password_env: XC_ROOM_PASSWORD, history_stanzas: 0}}
tenants:
  - {{id: ops, token_env: XC_TOKEN, accounts: [notify]}}
"""
COMPONENT_CONFIG = """\
storage: {{kind: sqlite, path: store.sqlite3}}
policy_dir: {repo}
accounts:
  - {{ref: notify, provider: component, jid: {jid}, secret_env: XC_SECRET, port: {port}}}
tenants:
  - {{id: ops, token_env: XC_TOKEN, accounts: [notify]}}
"""


@contextlib.asynccontextmanager
async def run_service(tmp_path: Path, text: str, env: dict[str, str]) -> AsyncIterator[LiveApp]:
    path = tmp_path / "xmpp-connect.yaml"
    path.write_text(text)
    config = load_config(path, env={**env, "XC_TOKEN": ENV["TOKEN"]})
    assert config.storage.path is not None
    service = AdapterService(config, SqliteStore(config.storage.path), default_policy())
    await service.start()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(service)), base_url="http://127.0.0.1",
                             headers={"Authorization": f"Bearer {ENV['TOKEN']}"})
    try:
        yield LiveApp(service, http, WAIT)
    finally:
        await http.aclose()
        await asyncio.wait_for(service.stop(), WAIT)


async def online(prosody: ProsodyServer, user: TestUser) -> Recipient:
    return await Recipient(prosody, user, "phone").online()


@pytest.mark.prosody
async def test_a_configured_room_is_joined_at_start_and_a_send_is_room_level_evidence(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    """§32.4 from the configuration: the room is created (password-protected) and joined before any send;
    the room accepting the message is room-level evidence, not each occupant seeing it."""
    user = prosody.fresh_user("svc")
    room = f"ops-{uuid.uuid4().hex[:8]}@{MUC_DOMAIN}"
    room_password = f"room-{uuid.uuid4().hex[:8]}"
    text = ROOM_CONFIG.format(repo=REPO, jid=user.jid, port=prosody.port, ca=prosody.cert_path, room=room)
    env = {"XC_PASSWORD": user.password, "XC_ROOM_PASSWORD": room_password}
    bob = await online(prosody, prosody.fresh_user("bob"))
    try:
        async with run_service(tmp_path, text, env) as running:
            provider = running.service.providers["notify"]
            assert isinstance(provider, SlixmppProvider)
            assert provider.groups.joined == {room: user.username}, "joined at start, before any send"
            assert await bob.join_room(room, "bob") == "error", "the room was created with the password"
            assert await bob.join_room(room, "bob", room_password) == "joined"

            body = {"idempotency_key": uuid.uuid4().hex, "content": {"body": "New incident case opened."}}
            result = await running.act(body, f"/xmpp/muc/{room}/send")
            message_id = result["xmpp_message_id"]
            room_level = await running.wait_for_event(
                message_id, "notification.endpoint.accepted", "undef.muc_room_message_participant_uncertain"
            )
            assert room_level["assessment"]["category"] == "undef"
            seen = await asyncio.wait_for(bob.room_messages.get(), WAIT)
            assert seen["body"] == "New incident case opened."
            assessment = await running.get(f"/adapter/messages/{message_id}/assessment")
            assert assessment["category"] == "undef", "a room accepting a message is not occupant awareness"
            assert provider.groups.joined == {room: user.username}, "the send did not change our nick"
    finally:
        await bob.offline()


@pytest.mark.prosody
async def test_a_configured_component_sends_and_the_receipt_is_client_delivery(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    """§37 through the service: the component's message is written (no stream-management ack exists on a
    component stream), the recipient's receipt is client delivery, and health says what it cannot see."""
    text = COMPONENT_CONFIG.format(repo=REPO, jid=COMPONENT_DOMAIN, port=prosody.component_port)
    phone = await online(prosody, prosody.fresh_user("rcpt"))
    try:
        async with run_service(tmp_path, text, {"XC_SECRET": prosody.component_secret}) as running:
            assert isinstance(running.service.providers["notify"], ComponentProvider)
            key = uuid.uuid4().hex[:8]
            request = {
                "request_id": f"req-{key}",
                "action_type": "notification.send",
                "coordination_case_id": "case_build",
                "participant_id": "participant_oncall",
                "channel": "xmpp",
                "target_endpoint": {"endpoint_type": "bare_jid", "value": phone.user.jid},
                "content": {"body": "Build 42 failed."},
                "tracking_context": {"correlation_id": f"corr-{key}"},
                "idempotency_key": f"component:{key}",
                "requested_at": "2026-01-01T12:00:00Z",
            }
            message_id = (await running.act(request))["xmpp_message_id"]
            delivered = await phone.next_message(WAIT)
            assert str(delivered["from"]) == COMPONENT_DOMAIN
            await running.wait_for_event(
                message_id, "notification.attempt.accepted_by_provider", "undef.sent_to_server_only"
            )
            receipt = await running.wait_for_event(
                message_id, "notification.endpoint.accepted", "success.delivered_to_client"
            )
            assert receipt["assessment"]["category"] == "success"
            assert receipt["correlation_id"] == f"corr-{key}"
            assessment = await running.get(f"/adapter/messages/{message_id}/assessment")
            assert assessment["subclass"] == "success.delivered_to_client", "delivery, not reading"
            (health,) = (await running.get("/adapter/health"))["accounts"]
            assert health["stream_status"] == "connected" and health["tls_verification"] is False
            assert "component: no stream management acks" in health["known_degradations"]
    finally:
        await phone.offline()
