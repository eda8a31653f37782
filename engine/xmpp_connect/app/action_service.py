"""The AdapterBackend's write side: actions (§4.2), the standalone sends (§31.2) and raw stanzas a bridge
posts (``POST /adapter/events/provider``)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import psycopg

from xmpp_connect.api.backend import ActionOutcome
from xmpp_connect.api.problems import FieldError, Problem
from xmpp_connect.app.metrics import count_send
from xmpp_connect.config.settings import ServiceConfig, TenantConfig
from xmpp_connect.evidence.pipeline import EvidencePipeline
from xmpp_connect.model.native import NativeEvent
from xmpp_connect.sending.action_answers import action_outcome, action_problem
from xmpp_connect.sending.actions import Actions
from xmpp_connect.sending.schemas import InvalidAction
from xmpp_connect.store.errors import IdempotencyConflict, StoreUnavailable
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.xmpp.jids import bare

log = logging.getLogger(__name__)
STORE_FAILURES = (sqlite3.Error, psycopg.Error, StoreUnavailable)
"""A store that cannot write (full disk, lost database): the request is answered 503, nothing is claimed
done that the store did not keep, and a retry with the same idempotency key carries it out."""


class ActionService:
    """Mixed into AdapterService: uses its config, store, actions and pipelines."""

    config: ServiceConfig
    store: SqlStore
    actions: Actions
    pipelines: Mapping[str, EvidencePipeline]

    async def perform_action(
        self, tenant: TenantConfig, request: dict[str, Any], schema: str | None = None
    ) -> ActionOutcome:
        try:
            done = await self.actions.perform(tenant, request, schema)
            await self.store.durable()
        except (InvalidAction, IdempotencyConflict) as exc:
            raise action_problem(exc) from None
        except STORE_FAILURES as exc:
            log.error("the store failed while performing an action (%s)", type(exc).__name__)
            raise Problem(503, "store-unavailable", "The store could not record the request; retry it with"
                          " the same idempotency key.", headers={"Retry-After": "1"}) from None
        count_send(done.result)
        return action_outcome(done.result)

    async def standalone_send(self, tenant: TenantConfig, kind: str, body: dict[str, Any]) -> ActionOutcome:
        """§31.2: ``message`` (POST /xmpp/send), ``muc`` (body plus ``room``), ``pubsub`` (body plus ``node``,
        optional ``service``: the account domain's ``pubsub.`` service by default)."""
        request: dict[str, Any] = {"action_type": "notification.send", **body}
        request.setdefault("request_id", f"standalone:{body.get('idempotency_key', '')}")
        if kind == "muc":
            room = request.pop("room")
            request["channel"] = "xmpp_muc"
            request["target_endpoint"] = {"endpoint_type": "muc_room_jid", "value": room}
        elif kind == "pubsub":
            node = request.pop("node")
            service = request.pop("service", None) or self._pubsub_service(tenant, request.get("account"))
            request["action_type"] = "feed.publish_item"
            request["channel"] = "xmpp_pubsub"
            request["target_endpoint"] = {"endpoint_type": "pubsub_node", "service": service, "value": node}
            request.setdefault("requested_at", datetime.now(UTC).isoformat().replace("+00:00", "Z"))
            return await self.perform_action(tenant, request)
        return await self.perform_action(tenant, request, schema="xmpp.send")

    def _pubsub_service(self, tenant: TenantConfig, account_ref: object) -> str:
        account = self.config.account(account_ref if isinstance(account_ref, str) else tenant.default_account)
        jid = account.jid if account else ""
        return "pubsub." + bare(jid).partition("@")[2] if "@" in jid else ""

    async def ingest_provider_event(self, tenant: TenantConfig, payload: dict[str, Any]) -> dict[str, Any]:
        """A raw stanza from an external bridge (e.g. Prosody mod_rest) for one of the tenant's accounts."""
        account = payload.get("account", tenant.default_account)
        raw = payload.get("raw")
        if isinstance(account, str) and account not in tenant.accounts:
            raise Problem(404, "not-found", "No such account for this tenant.",
                          [FieldError("account", "not an account of this tenant")])
        errors = []
        if not isinstance(account, str):
            errors.append(FieldError("account", "an account ref is required"))
        if not isinstance(raw, str) or not raw.strip():
            errors.append(FieldError("raw", "a stanza as an XML string is required"))
        if errors:
            raise Problem(422, "invalid-request", "The provider event is not valid.", errors)
        event = NativeEvent(
            kind="stanza_received",
            account=account,
            observed_at=datetime.now(UTC),
            raw=raw,
            detail={"source": "bridge", "authenticated_stream": False},
        )
        with self.store.transaction():
            observations = self.pipelines[tenant.id].handle(event)
        await self.store.durable()
        return {
            "accepted": True,
            "observations": [
                {
                    "scenario": o.classification.scenario,
                    "event_types": list(o.classification.events),
                    "assessment": asdict(o.classification.assessment),
                    "xmpp_message_id": o.outbound.message_id if o.outbound else None,
                }
                for o in observations
            ],
        }
