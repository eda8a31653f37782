"""One slixmpp session of an account: its client (TLS, SASL, plugins, retry backoff) and its state."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler.base import BaseHandler

from xmpp_connect.config.settings import AccountConfig
from xmpp_connect.providers.base import Backoff, ChannelHealth, Feature, SessionTuning
from xmpp_connect.providers.slixmpp_matchers import cheaper


@dataclass
class SessionState:
    """What the provider knows about its stream, shared by its parts."""

    ready: bool = False
    stopping: bool = False
    fatal: str | None = None
    sm_active: bool = False
    stream_status: str = "unknown"
    auth_status: str = "unknown"
    tls_status: str = "unknown"
    down_reported: bool = False
    """The stream-down fact of the current outage was emitted (until the next ready session)."""
    failures_while_down: int = 0
    """Connection failures after that fact: logged, not emitted (one outage, one fact)."""


class AccountClient(ClientXMPP):
    """A ClientXMPP whose connection retries follow the account's backoff instead of slixmpp's 1/3/7/... s."""

    def __init__(self, jid: str, password: str, backoff: Backoff) -> None:
        super().__init__(jid, password)
        self.backoff = backoff
        self.failed_attempts = 0

    def reschedule_connection_attempt(self) -> asyncio.Future[Any] | None:
        if self._current_connection_attempt is None:
            return None
        self._connect_loop_wait = self.backoff.delay(self.failed_attempts)
        self.failed_attempts += 1
        self._current_connection_attempt = asyncio.ensure_future(self._connect_loop(), loop=self.loop)
        return self._current_connection_attempt

    def register_handler(self, handler: BaseHandler, before: BaseHandler | None = None,
                         after: BaseHandler | None = None) -> None:
        """slixmpp's and the plugins' handlers, each with the cheaper equivalent of its matcher."""
        if handler.stream is None and hasattr(handler, "_matcher"):
            handler._matcher = cheaper(handler._matcher)
        super().register_handler(handler, before, after)


def new_client(config: AccountConfig, tuning: SessionTuning) -> AccountClient:
    """A client for the account: STARTTLS only (verified unless turned off), subscriptions as configured,
    disco, XEP-0198 and XEP-0199 registered. The provider adds its handlers."""
    assert config.password is not None, "the provider requires a password"
    client = AccountClient(config.jid, config.password.reveal(), tuning.backoff)
    client.enable_direct_tls = False
    client.enable_plaintext = False
    if config.verify_tls:
        if config.ca_certs is not None:
            client.ca_certs = Path(config.ca_certs)
    else:
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        client.ssl_context = unverified
    # slixmpp: auto_authorize True approves, None leaves the request unanswered; auto_subscribe asks back.
    client.auto_authorize = None if config.subscription_requests == "ignore" else True
    client.auto_subscribe = config.subscription_requests == "approve_and_subscribe"
    client.register_plugin("xep_0030")
    # window=0: slixmpp's own ack request goes out before the stanza it should cover; we send ours after.
    client.register_plugin("xep_0198", {"window": 0})
    client.register_plugin("xep_0199", {"keepalive": False})
    return client


def describe(reason: Any) -> str | None:
    """A short reason for health details: an exception's type name, else the text."""
    if reason is None:
        return None
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)


def channel_health(
    config: AccountConfig, state: SessionState, supported_features: frozenset[Feature]
) -> ChannelHealth:
    """§26 health of the account from what its session knows."""
    degradations: list[str] = []
    if not config.verify_tls:
        degradations.append("tls_verification_disabled")
    if state.stream_status in ("reconnecting", "disconnected"):
        degradations.append("stream_down")
    if state.ready and not state.sm_active:
        degradations.append("stream_management_unavailable")
    if state.fatal is not None:
        status = "failing"
    elif state.ready and not degradations:
        status = "healthy"
    elif state.ready or state.stream_status == "reconnecting":
        status = "degraded"
    else:
        status = "unknown"
    reachability = {"connected": "healthy", "reconnecting": "unavailable", "failed": "unavailable"}
    return ChannelHealth(
        xmpp_account_ref=config.ref,
        server_ref=config.host,
        status=status,
        stream_status=state.stream_status,
        authentication_status=state.auth_status,
        tls_status=state.tls_status,
        server_reachability=reachability.get(state.stream_status, "unknown"),
        supported_extensions=tuple(sorted(str(f) for f in supported_features)),
        known_degradations=tuple(degradations),
    )


async def keep_alive(
    client: AccountClient, state: SessionState, tuning: SessionTuning,
    stream_down: Callable[[str, dict[str, object]], None],
) -> None:
    """XEP-0199 liveness: a ping that times out aborts the stream, which starts the reconnect."""
    while not state.stopping:
        await asyncio.sleep(tuning.ping_interval)
        if not state.ready:
            continue
        try:
            await client.plugin["xep_0199"].ping(timeout=tuning.ping_timeout)
        except IqTimeout:
            stream_down("stream_error", {"condition": "ping-timeout", "will_retry": True})
            client.abort()
        except IqError:
            continue
