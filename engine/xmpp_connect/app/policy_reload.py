"""Reload without restart: on SIGHUP the service re-reads its policy directory and swaps it in only if it
passes everything `rules check` checks (schemas, cross-checks, invariants). Evidence classified afterwards
is stamped with the new version; a refused policy leaves the running one in place and is logged."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from xmpp_connect.policy.load import load_policy
from xmpp_connect.policy.problems import PolicyError

if TYPE_CHECKING:
    from xmpp_connect.app.service import AdapterService

log = logging.getLogger(__name__)
_reloading = threading.Lock()


def reload_policy(service: AdapterService) -> str:
    """Load the configured policy directory and swap it in; PolicyError (running policy kept) if it fails.

    The command table (used when building facts) stays the one loaded at start."""
    policy = load_policy(service.config.policy_dir)
    service.classifier.reload(policy)
    service.policy = policy
    return policy.version


def reload_on_sighup(service: AdapterService) -> None:
    """Install the SIGHUP handler (main thread only). The reload runs on a thread so the event loop keeps
    serving while the tables are read and proven; a second SIGHUP during a reload is ignored."""

    def reload_in_background() -> None:
        if not _reloading.acquire(blocking=False):
            log.warning("policy reload already running; SIGHUP ignored")
            return
        try:
            old = service.policy.version
            version = reload_policy(service)
            log.info("policy reloaded: %s -> %s", old, version)
        except PolicyError as exc:
            problems = "\n".join(exc.messages)
            log.error("policy reload refused, keeping %s:\n%s", service.policy.version, problems)
        except Exception:
            log.exception("policy reload failed, keeping %s", service.policy.version)
        finally:
            _reloading.release()

    def on_sighup(_signum: int, _frame: Any) -> None:
        threading.Thread(target=reload_in_background, name="policy-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_sighup)
