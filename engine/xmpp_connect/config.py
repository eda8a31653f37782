"""The service configuration: listen address, storage, policy, XMPP accounts and tenants.

Secrets (account passwords, tenant tokens, database DSNs) are never written inline: the file names an
environment variable (``password_env``) or a file (``password_file``) that holds them. Errors name the
offending field, never its value.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

SANDBOX_DOMAIN = "sandbox.invalid"
DEFAULT_PORT = 8750
DEFAULT_TOKEN_ENV = "XMPP_CONNECT_TOKEN"
DEFAULT_TOKEN_FILE = "default-tenant.token"


class ConfigError(ValueError):
    """The configuration is unusable; the message names the field, never a secret."""


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
class AccountConfig:
    """One XMPP account the service sends from (§22). ``provider`` is ``sandbox`` or ``slixmpp``."""

    ref: str
    provider: str
    jid: str
    password: Secret | None = None
    host: str = "127.0.0.1"
    port: int = 5222
    ca_certs: str | None = None
    require_tls: bool = True
    verify_tls: bool = True
    """Check the server's certificate and name (§27); turning it off is explicit and shown in health."""


@dataclass(frozen=True)
class TenantConfig:
    """One caller of the API: its bearer token and the accounts it may send from."""

    id: str
    token: Secret
    accounts: tuple[str, ...]
    default_account: str


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
    stop_suppression_enabled: bool = False

    def account(self, ref: str) -> AccountConfig | None:
        return next((a for a in self.accounts if a.ref == ref), None)

    def tenant(self, tenant_id: str) -> TenantConfig | None:
        return next((t for t in self.tenants if t.id == tenant_id), None)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> ServiceConfig:
    """Read a YAML config file; relative paths in it are relative to the file's directory."""
    path = Path(path)
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return config_from_dict(data, base_dir=path.parent, env=os.environ if env is None else env)


def config_from_dict(data: Mapping[str, Any], base_dir: Path, env: Mapping[str, str]) -> ServiceConfig:
    """Build a ServiceConfig from parsed config data."""
    reader = _Reader(base_dir, env)
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
        stop_suppression_enabled=bool(data.get("stop_suppression_enabled", False)),
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


def _unique(values: list[str], where: str, what: str) -> None:
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: duplicate {what}")


class _Reader:
    """Typed field access with error messages that name the field."""

    def __init__(self, base_dir: Path, env: Mapping[str, str]) -> None:
        self.base_dir = base_dir
        self.env = env

    def mapping(self, data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = data.get(key) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: must be a mapping")
        return value

    def seq(self, data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(f"{key}: must be a list of mappings")
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
        if provider not in ("slixmpp", "sandbox"):
            raise ConfigError(f"{where}.provider: must be slixmpp or sandbox")
        return AccountConfig(
            ref=self.text(data, "ref", where),
            provider=provider,
            jid=self.text(data, "jid", where),
            password=self.secret(data, "password", where, required=provider == "slixmpp"),
            host=str(data.get("host", "127.0.0.1")),
            port=self.integer(data.get("port", 5222), f"{where}.port", minimum=1),
            ca_certs=None
            if data.get("ca_certs") is None
            else str(self.path(data["ca_certs"], f"{where}.ca_certs")),
            require_tls=self.flag(data, "require_tls", where),
            verify_tls=self.flag(data, "verify_tls", where),
        )

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
        return TenantConfig(
            id=self.text(data, "id", where), token=token, accounts=tuple(accounts), default_account=default
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
