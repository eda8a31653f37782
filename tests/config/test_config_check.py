"""`xmpp-connect config check|show` and `serve` on a bad file: each mistake a new user makes is reported as
file:line, the field path and a plain message (a hint where one helps), without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xmpp_connect.app.cli import main
from xmpp_connect.config.loader import load_config
from xmpp_connect.config.settings import ConfigError

ENV = {"XC_PW": "pw-secret-8812", "XC_TOKEN": "token-secret-4471"}
GOOD = """\
listen: {port: 8751}
accounts:
  - ref: ops
    jid: alerts@example.net/adapter
    password_env: XC_PW
tenants:
  - {id: ops, token_env: XC_TOKEN, accounts: [ops]}
"""
SERVE = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmpp-connect.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["config", "check", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_good_file_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = check(write(tmp_path, GOOD), capsys)
    assert (code, err) == (0, "")
    assert "OK: 1 account(s) (slixmpp), 1 tenant(s), sqlite storage, listening on 127.0.0.1:8751" in out


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("    password_env: XC_PW\n", "    password_env: XC_PW\n    verfy_tls: false\n"),
         ":6: accounts[0].verfy_tls: unknown key (did you mean verify_tls?)"),
        (("listen: {port: 8751}\n", "listen: {port: 8751}\nlimitz: {burst: 10}\n"),
         ":2: limitz: unknown key (did you mean limits?)"),
        (("listen: {port: 8751}\n", 'listen: {port: 8751}\nstop_suppression_enabled: "no"\n'),
         ':2: stop_suppression_enabled: true or false is required, not the string "no"; write true or '
         "false, without quotes"),
        (("alerts@example.net/adapter", "alerts@@example.net"),
         ":4: accounts[0].jid: an account JID is user@domain or user@domain/resource"),
        (("listen: {port: 8751}", "listen: {port: 70000}"), ":1: listen.port: must be <= 65535"),
        (("listen: {port: 8751}", "listen: {port: '8751'}"),
         ':1: listen.port: a whole number is required, not the string "8751"'),
        (("    password_env: XC_PW\n", "    password_env: XC_PW\n    iq_timeout: -1\n"),
         ":6: accounts[0].iq_timeout: must be > 0"),
        (("    password_env: XC_PW\n", "    password_env: XC_PW\n    provider: slixmp\n"),
         ":6: accounts[0].provider: must be one of slixmpp, component, sandbox (did you mean slixmpp?)"),
        (("XC_PW\n", "XC_MISSING\n"),
         ":5: accounts[0].password_env: environment variable XC_MISSING is not set"),
        (("[ops]}", "[ops], webhooks: [{id: w, url: 'ftp://x'}]}"),
         ":7: tenants[0].webhooks[0].url: an http:// or https:// URL with a host is required"),
        (("    password_env: XC_PW\n", "    password_env: XC_PW\n    rooms:\n      - {room_jid: ops}\n"),
         ":7: accounts[0].rooms[0].room_jid: a bare JID such as ops@conference.example.net is required"),
        (("tenants:\n", "tenants:\n  - {id: other, token_env: XC_TOKEN, accounts: [nope]}\n"),
         ":7: tenants[0].accounts: unknown account ref nope"),
    ],
)
def test_each_mistake_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    code, out, err = check(path, capsys)
    assert code == 1 and out == ""
    assert f"{path}{expected}" in err.splitlines(), err
    assert "Traceback" not in err


def test_every_problem_is_reported_in_file_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace("listen: {port: 8751}\n", "limitz: {}\n").replace(
        "    password_env: XC_PW\n", "    password_env: XC_PW\n    verfy_tls: false\n"
    )
    _code, _out, err = check(write(tmp_path, text), capsys)
    lines = err.splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == ["limitz", "accounts[0].verfy_tls"]


def test_yaml_syntax_error_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD.replace("    jid: alerts", "   jid: alerts"))
    code, _out, err = check(path, capsys)
    assert code == 1
    assert err.startswith(f"{path}:4:4: not valid YAML: "), err
    assert "Traceback" not in err


def test_an_inline_secret_is_refused_without_echoing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD.replace("password_env: XC_PW", "password: hunter2-inline"))
    _code, _out, err = check(path, capsys)
    assert f"{path}:5: accounts[0].password: inline secrets are not allowed; use password_env or " \
           "password_file" in err
    assert "hunter2" not in err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("ops]}", "ops], limitz: 1}"))
    with pytest.raises(ConfigError, match=r"tenants\[0\]\.limitz: unknown key"):
        main(["--debug", "config", "check", str(path)])


def test_show_fills_defaults_and_masks_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", str(write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    assert "pw-secret" not in out and "token-secret" not in out
    assert "password: '********'" in out and "token: '********'" in out
    assert "receipt_timeout_s: 300.0" in out and "verify_tls: true" in out and "port: 8751" in out
    assert f"path: {tmp_path / 'data' / 'xmpp-connect.sqlite3'}" in out


def test_serve_with_a_bad_config_exits_with_the_same_messages(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("XC_PW\n", "XC_PW\n    verfy_tls: x\n"))
    served = subprocess.run(
        [sys.executable, "-c", SERVE, "serve", "--config", str(path)],
        env={**os.environ, **ENV}, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert served.returncode == 1
    expected = f"{path}:6: accounts[0].verfy_tls: unknown key (did you mean verify_tls?)"
    assert served.stderr.splitlines() == [expected]


def test_load_config_raises_one_message_per_problem(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("listen: {port: 8751}", "listen: {port: 0, hots: x}"))
    with pytest.raises(ConfigError) as error:
        load_config(path, ENV)
    assert error.value.messages == (f"{path}:1: listen.hots: unknown key (did you mean host?)",)


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    from xmpp_connect import __version__

    assert capsys.readouterr().out == f"xmpp-connect {__version__}\n"
