"""Typed access to the parsed config data, building the settings types; errors name the field."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xmpp_connect.config.settings import (
    ACCESS_MODELS,
    CLIENT_PROVIDERS,
    COMPONENT_PROVIDER,
    DEFAULT_CLIENT_PORT,
    DEFAULT_COMPONENT_PORT,
    DEFAULT_GROUP_TIMEOUT_S,
    DEFAULT_HOLD_S,
    DELIVERY_MODES,
    NOT_FOR_COMPONENTS,
    PUBLISHER_MODELS,
    SUBSCRIPTION_REQUESTS,
    WHILE_DISCONNECTED,
    AccountConfig,
    ConfigError,
    MetricsConfig,
    NodeConfig,
    RoomConfig,
    Secret,
    StorageConfig,
    TenantConfig,
    WebhookConfig,
)
from xmpp_connect.config.webhook_url import ReceiverUrlError, check_receiver_url
from xmpp_connect.xmpp.jids import bare, is_valid_jid, split_jid


def _is_signing_secret(value: str) -> bool:
    """A Standard Webhooks secret: base64 key bytes, optionally prefixed ``whsec_``."""
    try:
        return len(base64.b64decode(value.removeprefix("whsec_"), validate=True)) >= 16
    except (binascii.Error, ValueError):
        return False


def unique(values: list[str], where: str, what: str) -> None:
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: duplicate {what}")


class FieldReader:
    """Typed field access with error messages that name the field."""

    def __init__(self, base_dir: Path, env: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.env = env
        self.allow_http = False

    def mapping(self, data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = data.get(key) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        return value

    def seq(self, data: Mapping[str, Any], key: str, where: str | None = None) -> list[Mapping[str, Any]]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(f"{key if where is None else f'{where}.{key}'}: must be a list of mappings")
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}.{key}: a non-empty string is required")
        return value

    def integer(self, value: Any, where: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{where}: an integer >= {minimum} is required")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{where}: a positive number is required")
        return float(value)

    def optional_number(self, data: Mapping[str, Any], key: str, where: str) -> float | None:
        value = data.get(key)
        return None if value is None else self.number(value, f"{where}.{key}")

    def path(self, value: Any, where: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: a path is required")
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def secret(self, data: Mapping[str, Any], name: str, where: str, required: bool) -> Secret | None:
        """``<name>_env`` or ``<name>_file``; an inline ``<name>`` is refused without echoing it."""
        if name in data:
            raise ConfigError(
                f"{where}.{name}: inline secrets are not allowed; use {name}_env or {name}_file"
            )
        if f"{name}_env" in data:
            var = self.text(data, f"{name}_env", where)
            value = self.env.get(var)
            if not value:
                raise ConfigError(f"{where}.{name}_env: environment variable {var} is not set")
            return Secret(value)
        if f"{name}_file" in data:
            file = self.path(data[f"{name}_file"], f"{where}.{name}_file")
            try:
                value = file.read_text(encoding="utf-8").strip()
            except OSError:
                raise ConfigError(f"{where}.{name}_file: cannot read {file}") from None
            if not value:
                raise ConfigError(f"{where}.{name}_file: {file} is empty")
            return Secret(value)
        if required:
            raise ConfigError(f"{where}: {name}_env or {name}_file is required")
        return None

    def account(self, data: Mapping[str, Any], where: str) -> AccountConfig:
        provider = data.get("provider", "slixmpp")
        if provider == COMPONENT_PROVIDER:
            return self.component(data, where)
        if provider not in CLIENT_PROVIDERS:
            raise ConfigError(f"{where}.provider: must be slixmpp, component or sandbox")
        if "secret" in data or "secret_env" in data or "secret_file" in data:
            raise ConfigError(f"{where}.secret: only a component account has a secret; use password_env")
        jid = self.text(data, "jid", where)
        if provider == "sandbox" and ("rooms" in data or "nodes" in data):
            raise ConfigError(f"{where}: rooms and nodes are configured on slixmpp accounts only")
        return AccountConfig(
            ref=self.text(data, "ref", where),
            provider=provider,
            jid=jid,
            password=self.secret(data, "password", where, required=provider == "slixmpp"),
            host=str(data.get("host", "127.0.0.1")),
            port=self.integer(data.get("port", DEFAULT_CLIENT_PORT), f"{where}.port", minimum=1),
            ca_certs=None
            if data.get("ca_certs") is None
            else str(self.path(data["ca_certs"], f"{where}.ca_certs")),
            require_tls=self.flag(data, "require_tls", where),
            verify_tls=self.flag(data, "verify_tls", where),
            rooms=self.rooms(data, where, jid),
            nodes=self.nodes(data, where),
            room_join_timeout=self.timeout(data, "room_join_timeout", where),
            iq_timeout=self.timeout(data, "iq_timeout", where),
            subscription_requests=self.choice(data, "subscription_requests", where, SUBSCRIPTION_REQUESTS),
            delivery=self.choice(data, "delivery", where, DELIVERY_MODES),
            while_disconnected=self.choice(data, "while_disconnected", where, WHILE_DISCONNECTED),
            hold_while_disconnected_s=self.number(
                data.get("hold_while_disconnected_s", DEFAULT_HOLD_S), f"{where}.hold_while_disconnected_s"
            ),
        )

    def component(self, data: Mapping[str, Any], where: str) -> AccountConfig:
        """A XEP-0114 component: its domain, the shared secret, the server's component port."""
        refused = next((key for key in NOT_FOR_COMPONENTS if key in data), None)
        if refused is not None:
            raise ConfigError(f"{where}.{refused}: not used by a component account")
        jid = self.text(data, "jid", where)
        local, _domain, resource = split_jid(jid)
        if local is not None or resource is not None or not is_valid_jid(jid):
            raise ConfigError(f"{where}.jid: a component JID is a bare domain such as notify.example.net")
        return AccountConfig(
            ref=self.text(data, "ref", where),
            provider=COMPONENT_PROVIDER,
            jid=jid,
            secret=self.secret(data, "secret", where, required=True),
            host=str(data.get("host", "127.0.0.1")),
            port=self.integer(data.get("port", DEFAULT_COMPONENT_PORT), f"{where}.port", minimum=1),
            require_tls=False,
            verify_tls=False,
            iq_timeout=self.timeout(data, "iq_timeout", where),
        )

    def timeout(self, data: Mapping[str, Any], key: str, where: str) -> float:
        return self.number(data.get(key, DEFAULT_GROUP_TIMEOUT_S), f"{where}.{key}")

    def rooms(self, data: Mapping[str, Any], where: str, account_jid: str) -> tuple[RoomConfig, ...]:
        rooms = tuple(
            self.room(entry, f"{where}.rooms[{i}]", account_jid)
            for i, entry in enumerate(self.seq(data, "rooms", where))
        )
        unique([r.room_jid.lower() for r in rooms], f"{where}.rooms", "room_jid")
        return rooms

    def room(self, data: Mapping[str, Any], where: str, account_jid: str) -> RoomConfig:
        """The default nick is the account's localpart, the nick the send path joins with."""
        room_jid = self.text(data, "room_jid", where)
        local, _domain, resource = split_jid(room_jid)
        if local is None or resource is not None or not is_valid_jid(room_jid):
            raise ConfigError(f"{where}.room_jid: a bare room JID (room@conference.example.net) is required")
        nick = data.get("nick", bare(account_jid).partition("@")[0] if "@" in account_jid else "xmpp-connect")
        if not isinstance(nick, str) or not nick.strip() or "/" in nick:
            raise ConfigError(f"{where}.nick: a non-empty nickname is required")
        history = data.get("history_stanzas")
        return RoomConfig(
            room_jid=room_jid,
            nick=nick,
            password=self.secret(data, "password", where, required=False),
            join_at_start=self.flag(data, "join_at_start", where),
            create=self.flag(data, "create", where),
            non_anonymous=self.flag(data, "non_anonymous", where),
            members_only=self.flag(data, "members_only", where, default=False),
            moderated=self.flag(data, "moderated", where, default=False),
            persistent=self.flag(data, "persistent", where),
            public=self.flag(data, "public", where),
            history_stanzas=None if history is None else self.integer(history, f"{where}.history_stanzas", 0),
        )

    def nodes(self, data: Mapping[str, Any], where: str) -> tuple[NodeConfig, ...]:
        entries = self.seq(data, "nodes", where)
        nodes = tuple(self.node(entry, f"{where}.nodes[{i}]") for i, entry in enumerate(entries))
        unique([f"{n.service_jid.lower()} {n.node}" for n in nodes], f"{where}.nodes", "service_jid + node")
        return nodes

    def node(self, data: Mapping[str, Any], where: str) -> NodeConfig:
        service_jid = self.text(data, "service_jid", where)
        if "/" in service_jid or not is_valid_jid(service_jid):
            raise ConfigError(f"{where}.service_jid: a PubSub service JID (pubsub.example.net) is required")
        return NodeConfig(
            service_jid=service_jid,
            node=self.text(data, "node", where),
            create=self.flag(data, "create", where, default=False),
            access_model=self.choice(data, "access_model", where, ACCESS_MODELS),
            publisher_model=self.choice(data, "publisher_model", where, PUBLISHER_MODELS),
            subscribe=self.flag(data, "subscribe", where, default=False),
        )

    def choice(self, data: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...]) -> str:
        """One of ``allowed``; the first is the default."""
        value = data.get(key, allowed[0])
        if value not in allowed:
            raise ConfigError(f"{where}.{key}: must be one of {', '.join(allowed)}")
        return value

    def flag(self, data: Mapping[str, Any], key: str, where: str, default: bool = True) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}: true or false is required")
        return value

    def tenant(self, data: Mapping[str, Any], where: str, account_refs: set[str]) -> TenantConfig:
        accounts = data.get("accounts")
        if not isinstance(accounts, list) or not accounts or not all(isinstance(a, str) for a in accounts):
            raise ConfigError(f"{where}.accounts: a non-empty list of account refs is required")
        unknown = [a for a in accounts if a not in account_refs]
        if unknown:
            raise ConfigError(f"{where}.accounts: unknown account ref {unknown[0]}")
        default = data.get("default_account", accounts[0])
        if default not in accounts:
            raise ConfigError(f"{where}.default_account: must be one of the tenant's accounts")
        token = self.secret(data, "token", where, required=True)
        assert token is not None
        webhooks = tuple(
            self.webhook(entry, f"{where}.webhooks[{i}]")
            for i, entry in enumerate(self.seq(data, "webhooks", where))
        )
        unique([w.id for w in webhooks], f"{where}.webhooks", "id")
        return TenantConfig(
            id=self.text(data, "id", where),
            token=token,
            accounts=tuple(accounts),
            default_account=default,
            webhooks=webhooks,
        )

    def webhook(self, data: Mapping[str, Any], where: str) -> WebhookConfig:
        """A receiver URL that passes the same check as one created over the API, and a usable secret."""
        url = self.text(data, "url", where)
        try:
            check_receiver_url(url, self.allow_http)
        except ReceiverUrlError as exc:
            raise ConfigError(f"{where}.url: {exc}") from None
        types = data.get("event_types") or []
        if not isinstance(types, list) or not all(isinstance(t, str) and t for t in types):
            raise ConfigError(f"{where}.event_types: a list of event type names is required")
        secret = self.secret(data, "secret", where, required=True)
        assert secret is not None
        if not _is_signing_secret(secret.reveal()):
            raise ConfigError(f"{where}.secret: a Standard Webhooks secret (whsec_ + base64) is required")
        return WebhookConfig(
            id=self.text(data, "id", where), url=url, secret=secret, event_types=tuple(types)
        )

    def metrics(self, data: Mapping[str, Any]) -> MetricsConfig:
        port = data.get("port")
        return MetricsConfig(
            enabled=self.flag(data, "enabled", "metrics"),
            token=self.secret(data, "token", "metrics", required=False),
            port=None if port is None else self.integer(port, "metrics.port", minimum=0),
        )

    def storage(self, data: Any, data_dir: Path) -> StorageConfig:
        if data is None:
            return StorageConfig(kind="sqlite", path=str(data_dir / "xmpp-connect.sqlite3"))
        if not isinstance(data, Mapping):
            raise ConfigError("storage: must be a mapping")
        kind = data.get("kind", "sqlite")
        if kind == "sqlite":
            path = self.path(data.get("path", str(data_dir / "xmpp-connect.sqlite3")), "storage.path")
            return StorageConfig(kind="sqlite", path=str(path))
        if kind == "postgres":
            return StorageConfig(kind="postgres", dsn=self.secret(data, "dsn", "storage", required=True))
        raise ConfigError("storage.kind: must be sqlite or postgres")
