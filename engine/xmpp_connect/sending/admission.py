"""The §12.1 pre-send checks, written once: the core refuses with their reason, and an API worker accepts a
send itself only when they pass (else the core takes it and answers with the same reason)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from xmpp_connect.config.settings import TenantConfig
from xmpp_connect.evidence.pipeline import FEATURE_MARKERS, FEATURE_RECEIPTS
from xmpp_connect.sending.ports import Capabilities
from xmpp_connect.store.records import Suppression
from xmpp_connect.xmpp.jids import bare, is_valid_jid

MANDATORY_OPTIONS = {"require_receipts": FEATURE_RECEIPTS, "require_displayed": FEATURE_MARKERS}

StreamStatus = Callable[[str], str | None]
"""account -> its stream status (``connected``, ...); None when this service has no such account."""
Suppressions = Callable[[str, str], Suppression | None]
"""(tenant id, bare JID) -> the recipient's suppression, if any."""




class Admission:
    """Whether a send may go out now, and the §12.1 reason when not (in the table's order)."""

    def __init__(
        self, stream_status: StreamStatus, suppression: Suppressions, capabilities: Capabilities | None = None
    ) -> None:
        self.stream_status = stream_status
        self.suppression = suppression
        self.capabilities = capabilities

    def refusal(
        self,
        tenant: TenantConfig,
        account: str,
        to_jid: str,
        render_error: str | None,
        options: Mapping[str, Any],
        check_stream: bool = True,
        stream_status: StreamStatus | None = None,
    ) -> str | None:
        """The reason the adapter refuses to send; None to go ahead.

        ``check_stream`` is off when scheduling: the stream is checked when the message is due.
        ``stream_status`` answers for this call instead of the admission's own (a status already read)."""
        if not to_jid:
            return "missing_jid"
        if not is_valid_jid(to_jid):
            return "invalid_jid"
        if render_error is not None:
            return "render_failed"
        status = (stream_status or self.stream_status)(account) if account in tenant.accounts else None
        if status is None:
            return "account_missing"
        if check_stream and status != "connected":
            return "stream_unavailable"
        if self.suppression(tenant.id, bare(to_jid)) is not None:
            return "suppressed"
        if self.lacks_mandatory_extension(account, to_jid, options):
            return "unsupported_extension"
        return None

    def lacks_mandatory_extension(self, account: str, to_jid: str, options: Mapping[str, Any]) -> bool:
        """A receipt or displayed marker the request makes mandatory, which the recipient's client is known
        not to support (unknown capabilities never refuse)."""
        if self.capabilities is None:
            return False
        wanted = [feature for option, feature in MANDATORY_OPTIONS.items() if options.get(option)]
        return any(self.capabilities(account, to_jid, feature) is False for feature in wanted)
