"""A throwaway ejabberd (Debian 23.01) for tests, beside prosody.py and with the same interface (port,
cert_path, fresh_user, start/stop/kill/freeze, cleanup), so a test can run against either server.

Its own config dir, spool, logs, HOME and Erlang node name (distribution on a free loopback port, no epmd),
so it never touches the system instance; run as the current user through a copy of ejabberdctl whose
INSTALLUSER is emptied (docs: /work/shared/notes/ejabberd-test-server.md)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from prosody import DOMAIN, TestUser, free_loopback_port

EJABBERDCTL = Path("/usr/sbin/ejabberdctl")

_CONFIG = """\
hosts: ["{domain}"]
loglevel: info
certfiles: ["{base}/certs/{domain}.pem"]
registration_timeout: infinity
auth_method: internal
default_db: mnesia
listen:
  - port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: true
    starttls_required: false
    shaper: none
    max_stanza_size: 262144
s2s_access: none
acl:
  local: {{user_regexp: ""}}
access_rules:
  local: {{allow: local}}
  c2s: {{allow: all}}
  register: {{allow: all}}
  s2s: {{deny: all}}
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 5000
modules:
  mod_roster: {{}}
  mod_disco: {{}}
  mod_ping: {{}}
  mod_carboncopy: {{}}
  mod_privacy: {{}}
  mod_blocking: {{}}
  mod_offline: {{access_max_user_messages: max_user_offline_messages}}
  mod_stream_mgmt: {{resume_timeout: 30, max_ack_queue: infinity}}
  mod_register: {{ip_access: all}}
  mod_caps: {{}}
"""
_CTL_CONFIG = """\
ERLANG_NODE={node}@localhost
INET_DIST_INTERFACE=127.0.0.1
ERL_DIST_PORT={dist_port}
"""


class EjabberdServer:
    """One ejabberd node in a temp directory, listening for c2s on a free loopback port."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = base or Path(tempfile.mkdtemp(prefix="xc-ejabberd-"))
        self.port = free_loopback_port()
        self.dist_port = free_loopback_port()
        self.node = f"xc{uuid.uuid4().hex[:10]}"
        self.cert_path = self.base / "certs" / f"{DOMAIN}.crt"
        self.ctl = self.base / "ejabberdctl"
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    def prepare(self) -> None:
        """The certificate (key and certificate in one PEM for ejabberd), configs, a runnable ejabberdctl."""
        for name in ("certs", "spool", "logs", "home"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        key = self.base / "certs" / f"{DOMAIN}.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN},DNS:*.{DOMAIN}",
             "-keyout", str(key), "-out", str(self.cert_path)],
            check=True, capture_output=True, timeout=30,
        )
        (self.base / "certs" / f"{DOMAIN}.pem").write_text(key.read_text() + self.cert_path.read_text())
        (self.base / "ejabberd.yml").write_text(_CONFIG.format(domain=DOMAIN, base=self.base, port=self.port))
        ctl_config = _CTL_CONFIG.format(node=self.node, dist_port=self.dist_port)
        (self.base / "ejabberdctl.cfg").write_text(ctl_config)
        (self.base / "inetrc").write_text('{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n')
        script = EJABBERDCTL.read_text().replace("INSTALLUSER=ejabberd", "INSTALLUSER=")
        self.ctl.write_text(script)
        self.ctl.chmod(0o755)

    def _command(self, *args: str) -> list[str]:
        return [str(self.ctl), "--config-dir", str(self.base), "--config", str(self.base / "ejabberd.yml"),
                "--ctl-config", str(self.base / "ejabberdctl.cfg"), "--spool", str(self.base / "spool"),
                "--logs", str(self.base / "logs"), *args]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.base / "home")}

    def start(self, timeout: float = 30.0) -> None:
        """``ejabberdctl foreground`` as a child in its own process group; returns once c2s accepts."""
        if self._frozen:
            self.kill()
        self._process = subprocess.Popen(
            self._command("foreground"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=self.base, env=self._env(), start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"ejabberd exited with {self._process.returncode}; see {self.base}/logs")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"ejabberd did not listen on {self.port} within {timeout}s")

    def stop(self, timeout: float = 20.0) -> None:
        """``ejabberdctl stop`` and wait for the node to exit (killed when frozen or stuck)."""
        if self._frozen or self._process is None:
            self.kill()
            return
        if self._process.poll() is None:
            subprocess.run(self._command("stop"), env=self._env(), capture_output=True, timeout=timeout)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP the node's process group: sockets stay open, nothing is answered."""
        assert self._process is not None
        os.killpg(self._process.pid, signal.SIGSTOP)
        self._frozen = True

    def kill(self) -> None:
        """SIGKILL the node's process group (the script and the Erlang VM we started)."""
        self._frozen = False
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=10)
        self._process = None

    @property
    def running(self) -> bool:
        return not self._frozen and self._process is not None and self._process.poll() is None

    def register(self, username: str, password: str) -> TestUser:
        """Create an account (the node must be up)."""
        subprocess.run(self._command("register", username, DOMAIN, password), env=self._env(), check=True,
                       capture_output=True, timeout=30)
        return TestUser(username, password)

    def fresh_user(self, prefix: str = "u") -> TestUser:
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        return self.register(name, f"pw-{uuid.uuid4().hex[:12]}")

    def log_text(self) -> str:
        path = self.base / "logs" / "ejabberd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
