"""What each account's connection is doing, in words an operator can act on: ``connecting``, ``connected``
or ``failing`` with a reason (``dns``, ``refused``, ``timeout``, ``unreachable``, ``tls``, ``auth``,
``stream_error``, ``disconnected``), read from the providers' native events. Each change is one log line."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from xmpp_connect.config.settings import AccountConfig
from xmpp_connect.model.native import NativeEvent

log = logging.getLogger("xmpp_connect.accounts")

CONNECTING, CONNECTED, FAILING = "connecting", "connected", "failing"
REASON_TEXT = {
    "dns": "the server's name does not resolve",
    "refused": "the server refused the connection (nothing listens on that port?)",
    "timeout": "the server did not answer in time",
    "unreachable": "the server cannot be reached",
    "tls": "TLS failed (certificate not trusted, or the server offers no STARTTLS)",
    "auth": "authentication failed (wrong password or unknown account)",
    "stream_error": "the server closed the stream with an error",
    "disconnected": "the session was lost; reconnecting",
}


@dataclass(frozen=True)
class AccountState:
    """One account's connection now. ``retrying``: the provider keeps trying (false after TLS or auth
    failures, which retrying cannot fix)."""

    account: str
    status: str
    reason: str | None
    detail: str | None
    retrying: bool
    since: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "reason_text": REASON_TEXT.get(self.reason) if self.reason else None,
            "detail": self.detail,
            "retrying": self.retrying,
            "since": self.since.isoformat(),
        }


def failure_reason(event: NativeEvent) -> tuple[str, str | None] | None:
    """(reason, detail) for an event that says the connection failed, else None."""
    detail = event.detail
    if event.kind == "authentication_failed":
        return "auth", _text(detail.get("condition"))
    if event.kind == "tls_failed":
        return "tls", _text(detail.get("reason"))
    if event.kind != "stream_error":
        return None
    condition = _text(detail.get("condition"))
    if condition != "connection-failed":
        return ("timeout" if condition == "ping-timeout" else "stream_error"), condition
    text = _text(detail.get("reason")) or ""
    lowered = text.lower()
    if "dns" in lowered or "gaierror" in lowered:
        return "dns", text
    if "refused" in lowered:
        return "refused", text
    if "timeout" in lowered:
        return "timeout", text
    return "unreachable", text or None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class AccountStatuses:
    """The connection state of every configured account, kept current from native events."""

    def __init__(self, accounts: tuple[AccountConfig, ...]) -> None:
        now = datetime.now(UTC)
        self._accounts = {a.ref: a for a in accounts}
        self._states = {a.ref: AccountState(a.ref, CONNECTING, None, None, True, now) for a in accounts}
        self._stopping = False

    def announce(self) -> None:
        """One line per account as the service starts connecting it."""
        for account in self._accounts.values():
            log.info("account %s: connecting to %s as %s", account.ref, _server(account), account.jid)

    def stopping(self) -> None:
        """The service is shutting down: the sessions it closes are not failures."""
        self._stopping = True

    def get(self, account: str) -> AccountState:
        return self._states[account]

    def all(self) -> list[AccountState]:
        return list(self._states.values())

    def observe(self, event: NativeEvent) -> None:
        current = self._states.get(event.account)
        if current is None or self._stopping:
            return
        failed = failure_reason(event)
        if event.kind == "stream_connected":
            new = replace(current, status=CONNECTED, reason=None, detail=None, retrying=True)
        elif failed is not None:
            reason, detail = failed
            retrying = bool(event.detail.get("will_retry", True))
            new = replace(current, status=FAILING, reason=reason, detail=detail, retrying=retrying)
        elif event.kind == "stream_disconnected" and current.status == CONNECTED:
            retrying = bool(event.detail.get("will_retry", True))
            new = replace(current, status=CONNECTING if retrying else FAILING, reason="disconnected",
                          detail=_text(event.detail.get("reason")), retrying=retrying)
        else:
            return
        if (new.status, new.reason, new.retrying) != (current.status, current.reason, current.retrying):
            self._states[event.account] = replace(new, since=event.observed_at)
            self._log(self._states[event.account])

    def _log(self, state: AccountState) -> None:
        account = self._accounts[state.account]
        if state.status == CONNECTED:
            log.info("account %s: connected to %s as %s", state.account, _server(account), account.jid)
            return
        then = "retrying" if state.retrying else "not retrying: fix the config and restart"
        log.warning("account %s: %s: %s (%s; %s)", state.account, state.status, state.reason,
                    REASON_TEXT.get(state.reason or "", state.detail), then)


def _server(account: AccountConfig) -> str:
    return f"{account.host}:{account.port}" if account.provider != "sandbox" else "the sandbox network"
