"""The actions answered at once without sending: tracking context, suppress, unsuppress."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from xmpp_connect.config.settings import TenantConfig
from xmpp_connect.model.evidence import endpoint_ref
from xmpp_connect.model.tracking import TrackingContext
from xmpp_connect.providers.stanza_builders import endpoint_type_of
from xmpp_connect.sending.ports import ActionStore
from xmpp_connect.sending.results import ADAPTER_ID
from xmpp_connect.store.records import IdempotentOperation, XmppEndpoint
from xmpp_connect.xmpp.jids import bare, is_valid_jid


def sync_action(
    store: ActionStore,
    tenant: TenantConfig,
    action_type: str,
    request: Mapping[str, Any],
    op: IdempotentOperation,
    received_at: datetime,
) -> dict[str, Any]:
    jid = (request["target_endpoint"].get("value") or "").strip()
    base = {
        "request_id": request["request_id"],
        "adapter_id": ADAPTER_ID,
        "action_type": action_type,
        "adapter_operation_id": op.operation_id,
        "xmpp_message_id": None,
        "assessment": None,
        "initial_events": [],
        "received_at": received_at.isoformat(),
    }
    if not jid or not is_valid_jid(jid):
        reason = "missing_jid" if not jid else "invalid_jid"
        return {**base, "accepted": False, "action_state": "rejected", "reason": reason}
    if action_type == "recipient.suppress":
        store.suppress(tenant.id, jid, reason=request.get("reason"))
    elif action_type == "recipient.unsuppress":
        store.unsuppress(tenant.id, jid)
    else:
        store.upsert_endpoint(
            XmppEndpoint(
                tenant_id=tenant.id,
                endpoint_id=endpoint_ref(tenant.id, jid),
                endpoint_type=endpoint_type_of(jid),
                jid=bare(jid),
                bare_jid=bare(jid),
                verification_state="syntax_validated",
                metadata=TrackingContext.registered(request, received_at).as_metadata(),
            )
        )
    return {**base, "accepted": True, "action_state": "completed", "reason": None}
