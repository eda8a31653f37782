"""A throwaway Prosody on loopback: a temp directory, a free port, a self-signed certificate for ``localhost``
(and its MUC and PubSub subdomains), accounts registered with prosodyctl.

The demo runs it as it is; the test suite's server (tests/integration/prosody.py) adds its settings and its
fault controls (freeze, kill) to it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOMAIN = "localhost"
MUC_DOMAIN = f"conference.{DOMAIN}"
PUBSUB_DOMAIN = f"pubsub.{DOMAIN}"

_CONFIG = """\
local base = "{base}"
run_as_root = {run_as_root}
data_path = base .. "/data"
pidfile = base .. "/prosody.pid"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = base .. "/prosody.log" }} }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "carbons"; "blocklist";
                    "offline"; "mam"; "smacks"; "register"; "posix" }}
modules_disabled = {{ "s2s" }}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
authentication = "internal_hashed"
c2s_require_encryption = true
ssl = {{ certificate = base .. "/certs/{domain}.crt"; key = base .. "/certs/{domain}.key" }}
default_storage = "internal"
storage = {{ archive = "memory"; muc_log = "memory" }}
VirtualHost "{domain}"
Component "{muc_domain}" "muc"
    modules_enabled = {{ "muc_mam" }}
Component "{pubsub_domain}" "pubsub"
"""


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalUser:
    """An account registered on the local server."""

    username: str
    password: str

    @property
    def jid(self) -> str:
        return f"{self.username}@{DOMAIN}"


class LocalProsody:
    """One Prosody process in a temp directory, c2s on a free loopback port, STARTTLS required."""

    def __init__(self, base: Path | None = None, prefix: str = "xc-demo-prosody-") -> None:
        self.base = base or Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_loopback_port()
        self.config_path = self.base / "prosody.cfg.lua"
        self.cert_path = self.base / "certs" / f"{DOMAIN}.crt"
        self._process: subprocess.Popen[bytes] | None = None

    def prepare(self) -> None:
        """Write the certificate and the configuration."""
        (self.base / "data").mkdir(parents=True, exist_ok=True)
        (self.base / "certs").mkdir(exist_ok=True)
        names = ",".join(f"DNS:{name}" for name in self.certificate_names())
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
             f"/CN={DOMAIN}", "-addext", f"subjectAltName={names}",
             "-keyout", str(self.base / "certs" / f"{DOMAIN}.key"), "-out", str(self.cert_path)],
            check=True, capture_output=True, timeout=60,
        )
        self.config_path.write_text(self.config_text())

    def certificate_names(self) -> tuple[str, ...]:
        """The names the self-signed certificate covers."""
        return (DOMAIN, f"*.{DOMAIN}", MUC_DOMAIN, PUBSUB_DOMAIN)

    def config_text(self) -> str:
        """The Lua configuration: STARTTLS required, MAM in memory, MUC and PubSub components."""
        return _CONFIG.format(
            base=self.base, run_as_root="true" if os.geteuid() == 0 else "false", domain=DOMAIN,
            muc_domain=MUC_DOMAIN, pubsub_domain=PUBSUB_DOMAIN, port=self.port,
        )

    def start(self, timeout: float = 20.0) -> None:
        """Start Prosody as a child in the foreground and wait until its c2s port accepts connections."""
        self._process = subprocess.Popen(
            ["prosody", "--config", str(self.config_path), "-F"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.base,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prosody exited with {self._process.returncode}; see {self.log_path}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"prosody did not listen on 127.0.0.1:{self.port} within {timeout}s")

    def register(self, username: str, password: str | None = None) -> LocalUser:
        """A new account (a random password unless given); works with the server up or down."""
        password = password or secrets.token_urlsafe(12)
        subprocess.run(
            ["prosodyctl", "--config", str(self.config_path), "register", username, DOMAIN, password],
            check=True, capture_output=True, timeout=60,
        )
        return LocalUser(username, password)

    @property
    def log_path(self) -> Path:
        return self.base / "prosody.log"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process and wait for it (SIGKILL when stuck)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
