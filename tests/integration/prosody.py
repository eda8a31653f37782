"""A throwaway Prosody server for tests: temp directory, free loopback port, self-signed certificate."""

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
from dataclasses import dataclass
from pathlib import Path

DOMAIN = "localhost"
MUC_DOMAIN = f"conference.{DOMAIN}"
PUBSUB_DOMAIN = f"pubsub.{DOMAIN}"
COMPONENT_DOMAIN = f"notify.{DOMAIN}"
ADMIN_USER = "admin"

_CONFIG = """\
local base = "{base}"
run_as_root = {run_as_root}
data_path = base .. "/data"
pidfile = base .. "/prosody.pid"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = base .. "/prosody.log" }} }}
admins = {{ "{admin}@{domain}" }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons"; "blocklist";
                    "offline"; "mam"; "smacks"; "register"; "posix" }}
modules_disabled = {{ "s2s" }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
network_settings = {{ nagle = false }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
http_ports = {{ }}
https_ports = {{ }}
authentication = "internal_hashed"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
min_seconds_between_registrations = 0
ssl = {{ certificate = base .. "/certs/{domain}.crt"; key = base .. "/certs/{domain}.key" }}
smacks_hibernation_time = 30
smacks_max_unacked_stanzas = 0
default_storage = "internal"
storage = {{ archive = "memory"; muc_log = "memory" }}
VirtualHost "{domain}"
Component "{muc_domain}" "muc"
    modules_enabled = {{ "muc_mam" }}
    restrict_room_creation = false
Component "{pubsub_domain}" "pubsub"
Component "{component_domain}"
    component_secret = "{component_secret}"
"""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TestUser:
    """An account registered on the test server."""

    __test__ = False

    username: str
    password: str

    @property
    def jid(self) -> str:
        return f"{self.username}@{DOMAIN}"


class ProsodyServer:
    """One Prosody process in a temp directory, listening for c2s on a free loopback port."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = base or Path(tempfile.mkdtemp(prefix="xc-prosody-"))
        self.port = free_loopback_port()
        self.component_port = free_loopback_port()
        self.component_secret = f"secret-{uuid.uuid4().hex[:12]}"
        self.config_path = self.base / "prosody.cfg.lua"
        self.cert_path = self.base / "certs" / f"{DOMAIN}.crt"
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    def prepare(self) -> None:
        """Write the certificate and the configuration."""
        (self.base / "data").mkdir(parents=True, exist_ok=True)
        (self.base / "certs").mkdir(exist_ok=True)
        self._make_certificate()
        self.config_path.write_text(
            _CONFIG.format(
                base=self.base,
                run_as_root="true" if os.geteuid() == 0 else "false",
                admin=ADMIN_USER,
                domain=DOMAIN,
                muc_domain=MUC_DOMAIN,
                pubsub_domain=PUBSUB_DOMAIN,
                component_domain=COMPONENT_DOMAIN,
                component_secret=self.component_secret,
                port=self.port,
                component_port=self.component_port,
            )
        )

    def _make_certificate(self) -> None:
        names = f"DNS:{DOMAIN},DNS:*.{DOMAIN},DNS:{MUC_DOMAIN},DNS:{PUBSUB_DOMAIN},DNS:{COMPONENT_DOMAIN}"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName={names}",
                "-keyout", str(self.base / "certs" / f"{DOMAIN}.key"), "-out", str(self.cert_path),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def start(self, timeout: float = 10.0) -> None:
        """Start Prosody in the foreground (as a child) and wait until the c2s port accepts connections.

        A frozen server is killed first."""
        if self._frozen:
            self.kill()
        self._process = subprocess.Popen(
            ["prosody", "--config", str(self.config_path), "-F"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.base,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise RuntimeError(f"prosody exited with {code}; see {self.base}/prosody.log")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"prosody did not listen on {self.port} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process we started and wait for it to exit (SIGKILL when frozen or stuck)."""
        if self._frozen:
            self.kill()
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=timeout)
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its sockets open but answers nothing (a hung server)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)
        self._frozen = True

    def kill(self) -> None:
        """SIGKILL (also ends a frozen server): sessions vanish without a stream close, state is lost."""
        self._frozen = False
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    @property
    def running(self) -> bool:
        """Started, not exited and not frozen."""
        return not self._frozen and self._process is not None and self._process.poll() is None

    def register(self, username: str, password: str) -> TestUser:
        """Create an account non-interactively (works with the server up or down)."""
        subprocess.run(
            ["prosodyctl", "--config", str(self.config_path), "register", username, DOMAIN, password],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return TestUser(username, password)

    def unregister(self, user: TestUser) -> None:
        """Delete an account (with the server down: a later login with it is refused)."""
        subprocess.run(
            ["prosodyctl", "--config", str(self.config_path), "deluser", user.jid],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def admin_user(self) -> TestUser:
        """The account named in ``admins`` (Prosody's PubSub service lets only admins create nodes)."""
        return self.register(ADMIN_USER, "admin-pw")

    def fresh_user(self, prefix: str = "u") -> TestUser:
        """A new account with a unique name, so no roster, offline store or archive leaks between tests."""
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        return self.register(name, f"pw-{uuid.uuid4().hex[:12]}")

    def log_text(self) -> str:
        path = self.base / "prosody.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
