"""The service configuration: listen address, storage, policy, XMPP accounts and tenants.

An account is a client account (``provider: slixmpp``, with the MUC rooms and PubSub nodes it uses), a
XEP-0114 external component (``provider: component``) or the simulated network (``provider: sandbox``).
Secrets (account passwords, room passwords, component secrets, tenant tokens, database DSNs) are never
written inline: the file names an environment variable (``password_env``) or a file (``password_file``) that
holds them. Errors name the offending field, never its value.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

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
    """A MUC room a client account uses (§18, §34): joined at session start when ``join_at_start``. When the
    join creates the room and ``create`` is set, the provider submits the configuration form from these
    fields, which unlocks it; without ``create`` it leaves the new room again and reports it missing.
    ``history_stanzas``: history asked for on join (None: the room's default, 0: none)."""

    room_jid: str
    nick: str = "xmpp-connect"
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

    def room(self, room_jid: str) -> RoomConfig | None:
        """The configured settings of a room (bare JIDs compared case-insensitively)."""
        wanted = room_jid.split("/", 1)[0].lower()
        return next((room for room in self.rooms if room.room_jid.lower() == wanted), None)


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
