"""The service configuration: listen address, storage, policy, XMPP accounts and tenants.

An account is a client account (``provider: slixmpp``, with the MUC rooms and PubSub nodes it uses), a
XEP-0114 external component (``provider: component``) or the simulated network (``provider: sandbox``).
Secrets (account passwords, room passwords, component secrets, tenant tokens, database DSNs) are never
written inline: the file names an environment variable (``password_env``) or a file (``password_file``) that
holds them. Errors name the offending field, never its value.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmpp_connect.config.schema import schema_problems
from xmpp_connect.config.source import SourceError, read_source
from xmpp_connect.config.webhook_url import ReceiverUrlError, check_receiver_url
from xmpp_connect.xmpp.jids import bare, is_valid_jid, split_jid

SANDBOX_DOMAIN = "sandbox.invalid"
DEFAULT_PORT = 8750
DEFAULT_TOKEN_ENV = "XMPP_CONNECT_TOKEN"
DEFAULT_TOKEN_FILE = "default-tenant.token"
CLIENT_PROVIDERS = ("slixmpp", "sandbox")
COMPONENT_PROVIDER = "component"
DEFAULT_CLIENT_PORT = 5222
DEFAULT_COMPONENT_PORT = 5347
DEFAULT_GROUP_TIMEOUT_S = 5.0
ACCESS_MODELS = ("open", "presence", "roster", "authorize", "whitelist")
SUBSCRIPTION_REQUESTS = ("approve_and_subscribe", "approve", "ignore")
PUBLISHER_MODELS = ("publishers", "subscribers", "open")
DELIVERY_MODES = ("at_least_once", "at_most_once")
"""What the outbox does with a send the server never acked when the session is lost (first: default)."""
WHILE_DISCONNECTED = ("hold", "refuse")
"""What a send does while the account's stream is down: held until it comes back, or refused at once."""
DEFAULT_HOLD_S = 300.0
"""§19 XmppPubSubNode access and publisher models a node may be created with."""
NOT_FOR_COMPONENTS = ("password", "password_env", "password_file", "ca_certs", "require_tls", "verify_tls",
                      "rooms", "nodes", "room_join_timeout", "subscription_requests")
"""Client-account keys refused on a component account: it has no password, no TLS (XEP-0114 streams are
plain: keep them on loopback) and no rooms or nodes."""


class ConfigError(ValueError):
    """The configuration is unusable: one message per problem, each naming the field, never a secret."""

    def __init__(self, *messages: str) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


class Secret:
    """A credential that cannot leak through repr(), str() or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class RoomConfig:
    """A MUC room a client account uses (§18, §34): joined at session start when ``join_at_start``; created
    and configured from these fields when the join finds no room and ``create`` is set (the provider's
    ``RoomSettings`` says how). ``history_stanzas``: history asked for on join (None: the room's default)."""

    room_jid: str
    nick: str
    password: Secret | None = None
    join_at_start: bool = True
    create: bool = True
    non_anonymous: bool = True
    members_only: bool = False
    moderated: bool = False
    persistent: bool = True
    public: bool = True
    history_stanzas: int | None = None


@dataclass(frozen=True)
class NodeConfig:
    """A PubSub node a client account uses (§19, §34): created at session start when missing and
    ``create`` is set, with these models; ``subscribe`` makes the account a subscriber of it."""

    service_jid: str
    node: str
    create: bool = False
    access_model: str = "open"
    publisher_model: str = "publishers"
    subscribe: bool = False


@dataclass(frozen=True)
class AccountConfig:
    """One XMPP account the service sends from (§22, §34). ``provider``: ``slixmpp`` (a client account with
    ``password``), ``component`` (a XEP-0114 component: ``jid`` is its domain, ``secret`` the shared secret)
    or ``sandbox``. Rooms and nodes belong to slixmpp accounts; the timeouts bound their joins and iqs."""

    ref: str
    provider: str
    jid: str
    password: Secret | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_CLIENT_PORT
    ca_certs: str | None = None
    require_tls: bool = True
    verify_tls: bool = True
    """Check the server's certificate and name (§27); turning it off is explicit and shown in health."""
    secret: Secret | None = None
    rooms: tuple[RoomConfig, ...] = ()
    nodes: tuple[NodeConfig, ...] = ()
    room_join_timeout: float = DEFAULT_GROUP_TIMEOUT_S
    iq_timeout: float = DEFAULT_GROUP_TIMEOUT_S
    subscription_requests: str = SUBSCRIPTION_REQUESTS[0]
    """What a client account does when a contact asks for its presence (RFC 6121 §3): approve and ask back
    (then the contact's presence is visible, §15), approve only, or ignore."""
    delivery: str = DELIVERY_MODES[0]
    """``at_least_once``: a send not acked by the server is written again after a restart or a lost session;
    ``at_most_once``: it ends with explicit acceptance-unknown evidence instead."""
    while_disconnected: str = WHILE_DISCONNECTED[0]
    hold_while_disconnected_s: float = DEFAULT_HOLD_S
    """How long a send accepted while the stream is down is held (the request's expiry bounds it too)."""


@dataclass(frozen=True)
class WebhookConfig:
    """A webhook subscription from the config file: the receiver, the event types it wants (empty: all) and
    its Standard Webhooks signing secret (``whsec_`` + base64, from ``secret_env`` or ``secret_file``)."""

    id: str
    url: str
    secret: Secret
    event_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class TenantConfig:
    """One caller of the API: its bearer token and the accounts it may send from."""

    id: str
    token: Secret
    accounts: tuple[str, ...]
    default_account: str
    webhooks: tuple[WebhookConfig, ...] = ()


@dataclass(frozen=True)
class StorageConfig:
    """``sqlite`` (``path``) or ``postgres`` (``dsn``, a secret)."""

    kind: str
    path: str | None = None
    dsn: Secret | None = None


@dataclass(frozen=True)
class LimitsConfig:
    """Request size and per-tenant rate limits (§27)."""

    max_body_bytes: int = 64 * 1024
    rate_per_second: float = 2000.0
    burst: int = 4000
    intake_backlog: int = 10_000
    """With API workers: accepted sends waiting for the core beyond which a worker stops queueing and hands
    each send to the core, which carries it out before answering (the sustained rate)."""


@dataclass(frozen=True)
class TimersConfig:
    """How long the adapter waits for a receipt or marker before recording it as missing (§29)."""

    receipt_timeout_s: float = 300.0
    marker_timeout_s: float = 3600.0


@dataclass(frozen=True)
class RetentionConfig:
    """How long raw stanzas and presence history are kept (§28; None keeps them) and how often the purge
    runs."""

    raw_retention_s: float | None = None
    presence_retention_s: float | None = None
    purge_interval_s: float = 3600.0


@dataclass(frozen=True)
class PrivacyConfig:
    """§28: metadata-only mode stores no message body anywhere; raw stanzas are redacted unless turned off."""

    metadata_only: bool = False
    redact_raw: bool = True


@dataclass(frozen=True)
class AuditConfig:
    """Signed checkpoints of the evidence chain (spec/audit.md): an Ed25519 private key (PEM, or 32 raw
    bytes in base64) from ``signing_key_env`` / ``signing_key_file``; without one nothing is signed."""

    signing_key: Secret | None = None
    checkpoint_interval_s: float = 3600.0


@dataclass(frozen=True)
class WebhooksConfig:
    """Webhook delivery for every tenant: plain http only to loopback unless ``allow_http``; an event a
    receiver has not taken after ``give_up_after_s`` of retries is dead (listed, not retried)."""

    allow_http: bool = False
    give_up_after_s: float = 86400.0


@dataclass(frozen=True)
class MetricsConfig:
    """``GET /metrics``: on the API port behind ``token`` (none: unauthenticated), or on its own ``port``."""

    enabled: bool = True
    token: Secret | None = None
    port: int | None = None


@dataclass(frozen=True)
class LoggingConfig:
    """``text`` (readable, the default) or ``json`` (one object per line); ``--log-format`` overrides."""

    format: str = "text"


LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class ServiceConfig:
    host: str
    port: int
    data_dir: Path
    storage: StorageConfig
    accounts: tuple[AccountConfig, ...]
    tenants: tuple[TenantConfig, ...]
    policy_dir: Path | None = None
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    timers: TimersConfig = field(default_factory=TimersConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    stop_suppression_enabled: bool = False
    audit: AuditConfig = field(default_factory=AuditConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def account(self, ref: str) -> AccountConfig | None:
        return next((a for a in self.accounts if a.ref == ref), None)

    def tenant(self, tenant_id: str) -> TenantConfig | None:
        return next((t for t in self.tenants if t.id == tenant_id), None)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read a YAML config file; relative paths in it are relative to the file's directory. Every problem
    is reported as ``file:line: field: message``."""
    path = Path(path)
    try:
        source = read_source(path)
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    if not isinstance(source.data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return config_from_dict(source.data, base_dir=path.parent, env=os.environ if env is None else env)
    except ConfigError as exc:
        raise ConfigError(*source.locate_all(exc.messages)) from None


def config_from_dict(data: Mapping[str, Any], base_dir: Path, env: Mapping[str, str]) -> ServiceConfig:
    """Build a ServiceConfig from parsed config data, checked against spec/config.schema.json first."""
    problems = schema_problems(data)
    if problems:
        raise ConfigError(*(str(problem) for problem in problems))
    reader = _Reader(base_dir, env)
    webhooks = reader.mapping(data, "webhooks", "webhooks")
    reader.allow_http = reader.flag(webhooks, "allow_http", "webhooks", default=False)
    listen = reader.mapping(data, "listen", "listen")
    data_dir = reader.path(data.get("data_dir", "data"), "data_dir")
    accounts = tuple(
        reader.account(entry, f"accounts[{i}]") for i, entry in enumerate(reader.seq(data, "accounts"))
    )
    if not accounts:
        raise ConfigError("accounts: at least one XMPP account is required")
    _unique([a.ref for a in accounts], "accounts", "ref")
    refs = {a.ref for a in accounts}
    tenants = tuple(
        reader.tenant(entry, f"tenants[{i}]", refs) for i, entry in enumerate(reader.seq(data, "tenants"))
    )
    if not tenants:
        raise ConfigError("tenants: at least one tenant with a bearer token is required")
    _unique([t.id for t in tenants], "tenants", "id")
    _unique([t.token.reveal() for t in tenants], "tenants", "token (two tenants share one)")
    _unique([a for t in tenants for a in t.accounts], "tenants", "account (an account belongs to one tenant)")
    limits = reader.mapping(data, "limits", "limits")
    timers = reader.mapping(data, "timers", "timers")
    retention = reader.mapping(data, "retention", "retention")
    privacy = reader.mapping(data, "privacy", "privacy")
    audit = reader.mapping(data, "audit", "audit")
    policy_dir = data.get("policy_dir")
    host = str(listen.get("host", "127.0.0.1"))
    return ServiceConfig(
        host=host,
        port=reader.integer(listen.get("port", DEFAULT_PORT), "listen.port", minimum=0),
        data_dir=data_dir,
        storage=reader.storage(data.get("storage"), data_dir),
        accounts=accounts,
        tenants=tenants,
        policy_dir=None if policy_dir is None else reader.path(policy_dir, "policy_dir"),
        limits=LimitsConfig(
            max_body_bytes=reader.integer(
                limits.get("max_body_bytes", LimitsConfig.max_body_bytes), "limits.max_body_bytes", minimum=1
            ),
            rate_per_second=reader.number(
                limits.get("rate_per_second", LimitsConfig.rate_per_second), "limits.rate_per_second"
            ),
            burst=reader.integer(limits.get("burst", LimitsConfig.burst), "limits.burst", minimum=1),
            intake_backlog=reader.integer(
                limits.get("intake_backlog", LimitsConfig.intake_backlog), "limits.intake_backlog", minimum=0
            ),
        ),
        timers=TimersConfig(
            receipt_timeout_s=reader.number(
                timers.get("receipt_timeout_s", TimersConfig.receipt_timeout_s), "timers.receipt_timeout_s"
            ),
            marker_timeout_s=reader.number(
                timers.get("marker_timeout_s", TimersConfig.marker_timeout_s), "timers.marker_timeout_s"
            ),
        ),
        retention=RetentionConfig(
            raw_retention_s=reader.optional_number(retention, "raw_retention_s", "retention"),
            presence_retention_s=reader.optional_number(retention, "presence_retention_s", "retention"),
            purge_interval_s=reader.number(
                retention.get("purge_interval_s", RetentionConfig.purge_interval_s),
                "retention.purge_interval_s",
            ),
        ),
        privacy=PrivacyConfig(
            metadata_only=reader.flag(privacy, "metadata_only", "privacy", default=False),
            redact_raw=reader.flag(privacy, "redact_raw", "privacy", default=True),
        ),
        stop_suppression_enabled=bool(data.get("stop_suppression_enabled", False)),
        audit=AuditConfig(
            signing_key=reader.secret(audit, "signing_key", "audit", required=False),
            checkpoint_interval_s=reader.number(
                audit.get("checkpoint_interval_s", AuditConfig.checkpoint_interval_s),
                "audit.checkpoint_interval_s",
            ),
        ),
        webhooks=WebhooksConfig(
            allow_http=reader.allow_http,
            give_up_after_s=reader.number(
                webhooks.get("give_up_after_s", WebhooksConfig.give_up_after_s), "webhooks.give_up_after_s"
            ),
        ),
        metrics=reader.metrics(reader.mapping(data, "metrics", "metrics")),
        logging=LoggingConfig(
            format=reader.choice(reader.mapping(data, "logging", "logging"), "format", "logging", LOG_FORMATS)
        ),
    )


def default_config(data_dir: str | Path, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """The embedded default: SQLite in ``data_dir``, one sandbox account, one tenant ``default``.

    The tenant's token comes from ``$XMPP_CONNECT_TOKEN``, else from ``data_dir/default-tenant.token``,
    which is created (mode 0600) with a random token on first use.
    """
    env = os.environ if env is None else env
    data_dir = Path(data_dir)
    token = env.get(DEFAULT_TOKEN_ENV) or _ensure_token_file(data_dir / DEFAULT_TOKEN_FILE)
    return ServiceConfig(
        host="127.0.0.1",
        port=DEFAULT_PORT,
        data_dir=data_dir,
        storage=StorageConfig(kind="sqlite", path=str(data_dir / "xmpp-connect.sqlite3")),
        accounts=(AccountConfig(ref="sandbox", provider="sandbox", jid=f"adapter@{SANDBOX_DOMAIN}/service"),),
        tenants=(
            TenantConfig(id="default", token=Secret(token), accounts=("sandbox",), default_account="sandbox"),
        ),
    )


def _ensure_token_file(path: Path) -> str:
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def _is_signing_secret(value: str) -> bool:
    """A Standard Webhooks secret: base64 key bytes, optionally prefixed ``whsec_``."""
    try:
        return len(base64.b64decode(value.removeprefix("whsec_"), validate=True)) >= 16
    except (binascii.Error, ValueError):
        return False


def _unique(values: list[str], where: str, what: str) -> None:
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: duplicate {what}")


class _Reader:
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
        _unique([r.room_jid.lower() for r in rooms], f"{where}.rooms", "room_jid")
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
        _unique([f"{n.service_jid.lower()} {n.node}" for n in nodes], f"{where}.nodes", "service_jid + node")
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
        _unique([w.id for w in webhooks], f"{where}.webhooks", "id")
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
