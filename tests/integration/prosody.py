"""The test suite's throwaway Prosody: the demo's local server (xmpp_connect.app.local_prosody) with the
tests' settings (plain auth allowed, open registration, XEP-0198 hibernation, an external component) and fault
controls (freeze, kill, restart, account deletion)."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from xmpp_connect.app.local_prosody import (
    DOMAIN,
    MUC_DOMAIN,
    PUBSUB_DOMAIN,
    LocalProsody,
    LocalUser,
    free_loopback_port,
)

__all__ = [
    "COMPONENT_DOMAIN",
    "DOMAIN",
    "MUC_DOMAIN",
    "PUBSUB_DOMAIN",
    "ProsodyServer",
    "TestUser",
    "free_loopback_port",
]

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


@dataclass(frozen=True)
class TestUser(LocalUser):
    """An account registered on the test server."""

    __test__ = False


class ProsodyServer(LocalProsody):
    """One Prosody process in a temp directory, listening for c2s on a free loopback port."""

    def __init__(self, base: Path | None = None) -> None:
        super().__init__(base, prefix="xc-prosody-")
        self.component_port = free_loopback_port()
        self.component_secret = f"secret-{uuid.uuid4().hex[:12]}"
        self._frozen = False

    def certificate_names(self) -> tuple[str, ...]:
        return (*super().certificate_names(), COMPONENT_DOMAIN)

    def config_text(self) -> str:
        return _CONFIG.format(
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

    def start(self, timeout: float = 10.0) -> None:
        """Start Prosody and wait until the c2s port accepts connections; a frozen server is killed first."""
        if self._frozen:
            self.kill()
        super().start(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process and wait for it (SIGKILL when frozen or stuck)."""
        if self._frozen:
            self.kill()
        super().stop(timeout)

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
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)

    @property
    def running(self) -> bool:
        """Started, not exited and not frozen."""
        return not self._frozen and self._process is not None and self._process.poll() is None

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the running server has spent so far, from /proc (the benchmarks put
        the server's work per message beside the clients')."""
        assert self._process is not None, "the server is not running"
        fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def register(self, username: str, password: str | None = None) -> TestUser:
        user = super().register(username, password)
        return TestUser(user.username, user.password)

    def unregister(self, user: LocalUser) -> None:
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
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
