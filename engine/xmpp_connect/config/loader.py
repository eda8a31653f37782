"""Reading the service configuration: a YAML file checked against spec/config.schema.json, or the
embedded sandbox default. Errors name the offending field (and its file line), never its value."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xmpp_connect.config.reader import FieldReader, unique
from xmpp_connect.config.schema import schema_problems
from xmpp_connect.config.settings import (
    DEFAULT_PORT,
    DEFAULT_TOKEN_ENV,
    DEFAULT_TOKEN_FILE,
    LOG_FORMATS,
    SANDBOX_DOMAIN,
    AccountConfig,
    AuditConfig,
    ConfigError,
    LimitsConfig,
    LoggingConfig,
    PrivacyConfig,
    RetentionConfig,
    Secret,
    ServiceConfig,
    StorageConfig,
    TenantConfig,
    TimersConfig,
    WebhooksConfig,
)
from xmpp_connect.config.source import SourceError, read_source


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
    reader = FieldReader(base_dir, env)
    webhooks = reader.mapping(data, "webhooks", "webhooks")
    reader.allow_http = reader.flag(webhooks, "allow_http", "webhooks", default=False)
    listen = reader.mapping(data, "listen", "listen")
    data_dir = reader.path(data.get("data_dir", "data"), "data_dir")
    accounts = tuple(
        reader.account(entry, f"accounts[{i}]") for i, entry in enumerate(reader.seq(data, "accounts"))
    )
    if not accounts:
        raise ConfigError("accounts: at least one XMPP account is required")
    unique([a.ref for a in accounts], "accounts", "ref")
    refs = {a.ref for a in accounts}
    tenants = tuple(
        reader.tenant(entry, f"tenants[{i}]", refs) for i, entry in enumerate(reader.seq(data, "tenants"))
    )
    if not tenants:
        raise ConfigError("tenants: at least one tenant with a bearer token is required")
    unique([t.id for t in tenants], "tenants", "id")
    unique([t.token.reveal() for t in tenants], "tenants", "token (two tenants share one)")
    unique([a for t in tenants for a in t.accounts], "tenants", "account (an account belongs to one tenant)")
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
