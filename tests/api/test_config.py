"""Service configuration: secrets from env/files only, errors name the field and never the secret."""

from pathlib import Path

import pytest

from xmpp_connect.config.loader import config_from_dict, default_config, load_config
from xmpp_connect.config.settings import ConfigError, Secret

BASE = {
    "accounts": [{"ref": "main", "jid": "bot@localhost", "password_env": "BOT_PW"}],
    "tenants": [{"id": "a", "token_env": "TOKEN_A", "accounts": ["main"]}],
}
ENV = {"BOT_PW": "hunter2-bot", "TOKEN_A": "tok-a-secret"}


def test_secrets_come_from_env_and_never_show_in_repr(tmp_path: Path) -> None:
    config = config_from_dict(BASE, tmp_path, ENV)
    account = config.accounts[0]
    assert account.password is not None and account.password.reveal() == "hunter2-bot"
    assert "hunter2" not in repr(config) and "tok-a-secret" not in repr(config)
    assert config.tenants[0].default_account == "main"
    assert config.storage.kind == "sqlite" and config.storage.path == str(
        tmp_path / "data/xmpp-connect.sqlite3"
    )


def test_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-token\n")
    data = {**BASE, "tenants": [{"id": "a", "token_file": "token", "accounts": ["main"]}]}
    assert config_from_dict(data, tmp_path, ENV).tenants[0].token == Secret("file-token")


def test_inline_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    data = {**BASE, "accounts": [{"ref": "main", "jid": "bot@localhost", "password": "inline-pw-123"}]}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, tmp_path, ENV)
    assert "accounts[0].password" in str(err.value) and "inline-pw-123" not in str(err.value)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"tenants": [{"id": "a", "token_env": "MISSING", "accounts": ["main"]}]}, "tenants[0].token_env"),
        ({"tenants": [{"id": "a", "token_env": "TOKEN_A", "accounts": ["nope"]}]}, "tenants[0].accounts"),
        ({"accounts": []}, "accounts"),
        ({"listen": {"port": "x"}}, "listen.port"),
        ({"storage": {"kind": "mysql"}}, "storage.kind"),
        ({"limits": {"burst": 0}}, "limits.burst"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, patch: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        config_from_dict({**BASE, **patch}, tmp_path, ENV)


def test_two_tenants_cannot_share_a_token(tmp_path: Path) -> None:
    tenants = [{"id": t, "token_env": "TOKEN_A", "accounts": ["main"]} for t in ("a", "b")]
    with pytest.raises(ConfigError, match="tenants"):
        config_from_dict({**BASE, "tenants": tenants}, tmp_path, ENV)


def test_load_config_reads_yaml_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text(
        "listen: {port: 9000}\nstorage: {kind: sqlite, path: db.sqlite3}\n"
        "accounts: [{ref: main, provider: sandbox, jid: adapter@sandbox.invalid}]\n"
        "tenants: [{id: a, token_env: TOKEN_A, accounts: [main]}]\n"
    )
    config = load_config(path, ENV)
    assert config.port == 9000 and config.storage.path == str(tmp_path / "db.sqlite3")
    assert config.accounts[0].password is None


def test_default_config_creates_a_private_token_file_once(tmp_path: Path) -> None:
    first = default_config(tmp_path, env={})
    token_file = tmp_path / "default-tenant.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert default_config(tmp_path, env={}).tenants[0].token == first.tenants[0].token
    assert default_config(tmp_path, env={"XMPP_CONNECT_TOKEN": "t"}).tenants[0].token == Secret("t")
    assert first.accounts[0].provider == "sandbox" and first.host == "127.0.0.1"


def test_an_account_belongs_to_one_tenant(tmp_path: Path) -> None:
    tenants = [
        {"id": "a", "token_env": "TOKEN_A", "accounts": ["main"]},
        {"id": "b", "token_env": "BOT_PW", "accounts": ["main"]},
    ]
    with pytest.raises(ConfigError, match="belongs to one tenant"):
        config_from_dict({**BASE, "tenants": tenants}, tmp_path, ENV)


def test_privacy_settings_reach_the_store(tmp_path: Path) -> None:
    """§28 metadata-only mode is switched on in the config file, not only in code."""
    from xmpp_connect.app.server import open_store

    assert config_from_dict(BASE, tmp_path, ENV).privacy.redact_raw is True
    config = config_from_dict({**BASE, "privacy": {"metadata_only": True}}, tmp_path, ENV)
    store = open_store(config)
    assert store.options.metadata_only is True
    with pytest.raises(ConfigError, match=r"privacy\.redact_raw"):
        config_from_dict({**BASE, "privacy": {"redact_raw": "no"}}, tmp_path, ENV)
