"""The §4.2 actions: validate (JSON Schema), pre-send checks (§12.1), idempotency, records, hand to provider.

A pre-send refusal is not an error: it is classified like any other fact (``kind: request_rejected``) and
answered with ``accepted: false`` and the assessment. Malformed requests raise ``InvalidAction``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker

from xmpp_connect.evidence.classify import Classifier
from xmpp_connect.evidence.recorder import Evidence, Recorder, RecorderStore
from xmpp_connect.model.classification import Classification
from xmpp_connect.model.correlation import OutboundRecord
from xmpp_connect.model.evidence import DedupeBasis, EvidenceEvent, endpoint_ref
from xmpp_connect.model.tracking import TrackingContext
from xmpp_connect.policy.paths import default_policy_dir
from xmpp_connect.providers.base import RoomJoin, XmppProvider
from xmpp_connect.providers.stanza_builders import OutboundMessage, endpoint_type_of, record_for
from xmpp_connect.sending.outbox import Outbox
from xmpp_connect.sending.templates import TemplateStore
from xmpp_connect.sending.timers import SendTimers
from xmpp_connect.store import idempotency
from xmpp_connect.store.idempotency import payload_hash
from xmpp_connect.store.outbox import OutboxEntry
from xmpp_connect.store.records import (
    AppendResult,
    IdempotentOperation,
    Suppression,
    XmppAttempt,
    XmppEndpoint,
    XmppMessage,
    XmppStanza,
)
from xmpp_connect.xmpp.jids import bare, is_valid_jid

ADAPTER_ID = "xmpp-connect.default"
SEND_ACTIONS = frozenset(
    {
        "notification.send",
        "notification.send_reminder",
        "notification.schedule",
        "interaction.request_acknowledgement",
        "interaction.send_command_prompt",
        "feed.publish_item",
    }
)
SYNC_ACTIONS = frozenset(
    {"notification.register_tracking_context", "recipient.suppress", "recipient.unsuppress"}
)
ACTION_TYPES = SEND_ACTIONS | SYNC_ACTIONS | {"notification.cancel"}
HASH_EXCLUDED = ("request_id", "requested_at")
SCHEDULED_STATE = "deferred"
"""The §10 attempt state of a scheduled message held locally; only in this state can it be cancelled."""
TYPED_ENDPOINTS = frozenset({"muc_room_jid", "pubsub_node", "component_jid"})
FEATURE_RECEIPTS = "urn:xmpp:receipts"
FEATURE_MARKERS = "urn:xmpp:chat-markers:0"
ATOM_NS = "http://www.w3.org/2005/Atom"


class InvalidAction(ValueError):
    """The request is malformed; ``errors`` are (field, message) pairs that never quote values."""

    def __init__(self, errors: list[tuple[str, str]], status: int = 422) -> None:
        super().__init__("invalid action request")
        self.errors = errors
        self.status = status


class ActionStore(RecorderStore, Protocol):
    """What actions need from the evidence store (store.sql.SqlStore provides it)."""

    def transaction(self) -> AbstractContextManager[None]: ...
    async def durable(self) -> None: ...
    def claim_operation(
        self, tenant_id: str, idempotency_key: str, payload_hash: str
    ) -> IdempotentOperation: ...
    def complete_operation(self, tenant_id: str, idempotency_key: str, result: Mapping[str, Any]) -> None: ...
    def get_message(self, tenant_id: str, message_id: str) -> XmppMessage | None: ...
    def create_message(self, message: XmppMessage) -> None: ...
    def get_attempt(self, tenant_id: str, attempt_id: str) -> XmppAttempt | None: ...
    def create_attempt(self, attempt: XmppAttempt) -> None: ...
    def record_stanza(self, stanza: XmppStanza) -> None: ...
    def append_evidence(self, events: Sequence[EvidenceEvent]) -> AppendResult: ...
    def suppression(self, tenant_id: str, jid: str) -> Suppression | None: ...
    def suppress(
        self, tenant_id: str, jid: str, state: str = ..., reason: str | None = None
    ) -> Suppression: ...
    def unsuppress(self, tenant_id: str, jid: str) -> bool: ...
    def upsert_endpoint(self, endpoint: XmppEndpoint) -> XmppEndpoint: ...
    def update_attempt(self, tenant_id: str, attempt_id: str, *, state: str | None = None) -> XmppAttempt: ...


class PendingSends(Protocol):
    """notification.schedule requests held until their send time (persisted: they survive a restart).

    ``holds_bodies`` is False in metadata-only mode: a held request keeps no body, so only template
    requests (``template_ref`` + ``variables``, rendered when due) can be scheduled."""

    holds_bodies: bool

    def hold(
        self,
        tenant_id: str,
        operation_id: str,
        message_id: str,
        request: Mapping[str, Any],
        send_at: datetime,
    ) -> None: ...
    def release(self, tenant_id: str, operation_id: str) -> dict[str, Any] | None:
        """Take a held request out for sending; None when it was cancelled or already released."""

    def cancel(self, tenant_id: str, operation_id: str) -> bool:
        """Drop a held request; False when none was held."""


Capabilities = Callable[[str, str, str], bool | None]
"""(account, jid, feature) -> whether the recipient's client advertises the feature; None when unknown."""


def spec_dir() -> Path:
    """spec/ inside the wheel (``_policy/spec``) or in the checkout."""
    return default_policy_dir() / "spec"


class ActionSchemas:
    """The request schemas of spec/actions, one validator per action type.

    jsonschema (Python) is the reference and words the errors; jsonschema-rs (compiled, ~80x faster) only
    answers "valid?" first, so a well-formed request never pays for the Python walk. Where the two disagree on
    a request the Python validator accepts (a format only jsonschema-rs checks), the Python answer stands."""

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or spec_dir() / "actions"
        docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in directory.glob("*.schema.json")}
        inlined = {
            name.removesuffix(".schema.json"): _inline_refs(doc, name, docs) for name, doc in docs.items()
        }
        self.validators = {
            name: Draft202012Validator(schema, format_checker=FormatChecker())
            for name, schema in inlined.items()
        }
        self.fast = {
            name: jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
            for name, schema in inlined.items()
        }

    def errors(self, schema: str, request: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(field, message) for each violation, the field as a dotted path; values are never quoted."""
        if self.fast[schema].is_valid(request):
            return []
        validator = self.validators[schema]
        out = []
        for error in sorted(validator.iter_errors(request), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in error.absolute_path)
            if error.validator == "required":
                missing = next((f for f in error.validator_value if f not in error.instance), "")
                out.append((".".join(x for x in (path, missing) if x), "is required"))
            elif error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
                out.append((".".join(x for x in (path, extra[0] if extra else "") if x), "is not allowed"))
            elif error.validator == "anyOf" and error.schema is not None and _is_content_rule(error.schema):
                out.append(("content", "content or template_ref is required"))
            else:
                out.append((path or "", f"fails '{error.validator}'"))
        return out


def _inline_refs(node: Any, current: str, docs: Mapping[str, Any]) -> Any:
    """The schema with every ``file#/pointer`` $ref replaced by its target (validation is ~5x faster)."""
    if isinstance(node, list):
        return [_inline_refs(item, current, docs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        file, _, pointer = ref.partition("#")
        file = file or current
        target: Any = docs[file]
        for part in filter(None, pointer.split("/")):
            target = target[part]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        resolved = _inline_refs(target, file, docs)
        return {"allOf": [resolved, _inline_refs(rest, current, docs)]} if rest else resolved
    return {k: _inline_refs(v, current, docs) for k, v in node.items() if k not in ("$id", "$defs")}


def _is_content_rule(schema: Mapping[str, Any]) -> bool:
    return any("template_ref" in alt.get("required", ()) for alt in schema.get("anyOf", ()))


@dataclass(frozen=True)
class ActionDone:
    """The §21.2 result, plus whether it replays an earlier one."""

    result: dict[str, Any]

    @property
    def accepted(self) -> bool:
        return bool(self.result["accepted"])


@dataclass(frozen=True)
class Tenant:
    """What actions need to know about the caller."""

    id: str
    accounts: tuple[str, ...]
    default_account: str


class Actions:
    """Carries out action requests for one service."""

    def __init__(
        self,
        store: ActionStore,
        classifier: Classifier,
        providers: Mapping[str, XmppProvider],
        account_jids: Mapping[str, str],
        templates: TemplateStore,
        schemas: ActionSchemas | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timers: SendTimers | None = None,
        pending: PendingSends | None = None,
        capabilities: Capabilities | None = None,
        recorder: Recorder | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.store = store
        self.recorder = recorder or Recorder(store, classifier.policy.precedence)
        self.classifier = classifier
        self.providers = providers
        self.account_jids = account_jids
        self.templates = templates
        self.schemas = schemas or ActionSchemas()
        self.clock = clock
        self.timers = timers
        self.pending = pending
        self.capabilities = capabilities
        self.outbox = outbox
        if outbox is not None:
            outbox.write = self.write_from_outbox
        self._own_facts: dict[tuple[str, tuple[tuple[str, Any], ...]], Classification] = {}

    def validate(self, request: Mapping[str, Any], schema: str | None = None) -> str:
        """The action type of a well-formed request, else InvalidAction naming the failing fields.

        ``schema`` overrides the action type's own schema (``xmpp.send`` for the standalone send)."""
        action_type = request.get("action_type")
        if not isinstance(action_type, str) or not action_type:
            raise InvalidAction([("action_type", "is required")])
        if action_type not in ACTION_TYPES:
            raise InvalidAction([("action_type", f"unsupported; one of {sorted(ACTION_TYPES)}")])
        errors = list(dict.fromkeys(self.schemas.errors(schema or action_type, request)))
        if errors:
            raise InvalidAction(errors)
        return action_type

    async def perform(
        self,
        tenant: Tenant,
        request: Mapping[str, Any],
        schema: str | None = None,
        accepted_at: datetime | None = None,
    ) -> ActionDone:
        """Validate, then run the action once per idempotency key (a repeat returns the original result).

        ``accepted_at``: an API worker already accepted this send then (it is carried out from the intake),
        so its accepted evidence is recorded even if the send is refused now."""
        action_type = self.validate(request, schema)
        received_at = accepted_at or self.clock()
        digest = payload_hash({k: v for k, v in request.items() if k not in HASH_EXCLUDED})
        if action_type == "notification.send_reminder":
            request = self._with_original(tenant, request)
        if action_type == "notification.schedule" and self.pending is None:
            raise InvalidAction([("action_type", "scheduling is not configured in this service")])
        scheduled_body = action_type == "notification.schedule" and "content" in request
        if scheduled_body and self.pending is not None and not self.pending.holds_bodies:
            reason = "metadata-only mode holds no message bodies: schedule with template_ref and variables"
            raise InvalidAction([("content", reason)])
        operation = self.store.claim_operation(tenant.id, request["idempotency_key"], digest)
        if operation.replayed and operation.result is not None:
            return ActionDone({**self._replayed(operation), "idempotent_replay": True})
        dispatch: Callable[[], None] | None = None
        if action_type in SYNC_ACTIONS:
            result = self._sync_action(tenant, action_type, request, operation, received_at)
        elif action_type == "notification.cancel":
            with self.store.transaction():
                result = self._cancel(tenant, request, operation, received_at)
        else:
            room = await self._join_room_of(tenant, request, operation)
            expected = tuple(sorted(room.expected_evidence)) if room is not None and room.joined else None
            with self.store.transaction():
                result, dispatch = self._send(
                    tenant, action_type, request, operation, received_at, expected, accepted_at is not None
                )
            # The records are durable before the stanza goes out: a send is never on the wire unrecorded.
            await self.store.durable()
        with self.store.transaction():
            if dispatch is not None:
                dispatch()
            self.store.complete_operation(tenant.id, request["idempotency_key"], result)
        return ActionDone({**result, "idempotent_replay": False})

    def _send(
        self,
        tenant: Tenant,
        action_type: str,
        request: Mapping[str, Any],
        op: IdempotentOperation,
        received_at: datetime,
        expected_evidence: tuple[str, ...] | None = None,
        accepted_elsewhere: bool = False,
    ) -> tuple[dict[str, Any], Callable[[], None] | None]:
        """Create the records and the initial evidence; the returned call hands the stanza to the provider
        (None when nothing is to be sent now)."""
        message = _message(tenant.id, action_type, request, op, received_at)
        message_id, attempt_id = message.message_id, _attempt_id(op.operation_id)
        target = request.get("target_endpoint") or {}
        to_jid = _target_jid(target)
        account = request.get("account") or tenant.default_account
        body, render_error = self._body(action_type, request)
        if not op.replayed or self.store.get_message(tenant.id, message_id) is None:
            self.store.create_message(message)
        scheduled = action_type == "notification.schedule"
        pubsub = _endpoint_type(target, to_jid) == "pubsub_node"
        outboxed = self.outbox is not None and not scheduled and not pubsub
        holds = outboxed and self.outbox is not None and self.outbox.holds(account)
        holds = holds and self._may_come_back(account)
        reason = self._pre_send_refusal(
            tenant, account, to_jid, render_error, request, check_stream=not scheduled and not holds
        )
        base = _result_base(action_type, request, op.operation_id, received_at)
        own = partial(_OwnEvidence, tenant.id, message, attempt_id, to_jid or None, received_at)
        accepted = own(_once("adapter_accepted", op.stanza_id))
        if reason is not None:
            if accepted_elsewhere:
                self._record({"kind": "adapter_accepted"}, accepted)
            refused = {"kind": "request_rejected", "reject_reason": reason}
            classification, events = self._record(refused, own(_once("request_rejected", op.stanza_id)))
            return {
                **base,
                "accepted": False,
                "action_state": "rejected",
                "reason": reason,
                "assessment": _assessment(classification),
                "initial_events": events,
            }, None
        options = request.get("options") or {}
        message_type = options.get("message_type", "chat")
        from_jid = self.account_jids[account]
        if not op.replayed or self.store.get_attempt(tenant.id, attempt_id) is None:
            self.store.create_attempt(
                XmppAttempt(
                    tenant_id=tenant.id,
                    attempt_id=attempt_id,
                    message_id=message_id,
                    account_ref=account,
                    from_jid=from_jid,
                    to_jid=to_jid,
                    to_endpoint_type=_endpoint_type(target, to_jid),
                    created_at=received_at,
                    updated_at=received_at,
                    message_type=_message_type(target, message_type),
                    state=SCHEDULED_STATE if scheduled else "accepted_by_adapter",
                    stanza_id=op.stanza_id,
                    origin_id=op.stanza_id,
                    expected_evidence=expected_evidence,
                )
            )
        acceptance = {"kind": "adapter_scheduled"} if scheduled else {"kind": "adapter_accepted"}
        classification, events = self._record(
            acceptance, replace(accepted, to_type=_endpoint_type(target, to_jid))
        )
        dispatch: Callable[[], None] | None = None
        if scheduled:
            assert self.pending is not None
            self.pending.hold(tenant.id, op.operation_id, message_id, request, _timestamp(request["send_at"]))
        else:
            dispatch = partial(
                self._dispatch, tenant.id, account, request, body or "", op.stanza_id, message_id, attempt_id
            )
        if outboxed and self.outbox is not None:
            dispatch = self._outboxed(tenant.id, account, request, body or "", op, received_at, dispatch)
        return {
            **base,
            "accepted": True,
            "action_state": "scheduled" if scheduled else "accepted",
            "reason": None,
            "assessment": _assessment(classification),
            "initial_events": events,
        }, dispatch

    def _dispatch(
        self,
        tenant_id: str,
        account: str,
        request: Mapping[str, Any],
        body: str,
        stanza_id: str,
        message_id: str,
        attempt_id: str,
    ) -> None:
        """Hand the message (or PubSub item) to the account's provider, then start its timers."""
        target = request.get("target_endpoint") or {}
        to_jid = _target_jid(target)
        endpoint_type = _endpoint_type(target, to_jid)
        options = request.get("options") or {}
        provider = self.providers[account]
        from_jid = self.account_jids[account]
        one_to_one = endpoint_type not in TYPED_ENDPOINTS
        outbound = OutboundMessage(
            to_jid=to_jid,
            body=body,
            message_type=_message_type(target, options.get("message_type", "chat")),
            request_receipt=one_to_one and options.get("request_receipt", True),
            markable=one_to_one and options.get("request_displayed", True),
            stanza_id=stanza_id,
            message_id=message_id,
            attempt_id=attempt_id,
        )
        if endpoint_type == "pubsub_node":
            item_id = (request.get("item") or {}).get("item_id") or stanza_id
            is_item = request.get("action_type") == "feed.publish_item"
            payload = body if is_item else atom_entry({"title": body})
            sent = provider.publish(to_jid, target["value"], item_id, payload, message_id, attempt_id)
            # The publish record's origin id is the item id: subscriber notifications correlate on it.
            self._record_outbound(tenant_id, from_jid, sent, "iq")
        else:
            record = replace(record_for(outbound, stanza_id, self.clock()), endpoint_type=endpoint_type)
            self._record_outbound(tenant_id, from_jid, record, "message")
            outboxed = self.outbox is not None and self.outbox.in_flight(stanza_id)
            _send_to(provider, endpoint_type, outbound)
            if outboxed:
                return  # the outbox starts its timers when the stanza is written (sending/outbox.py)
        self._start_timers(tenant_id, request, outbound)

    def _outboxed(
        self,
        tenant_id: str,
        account: str,
        request: Mapping[str, Any],
        body: str,
        op: IdempotentOperation,
        received_at: datetime,
        dispatch: Callable[[], None] | None,
    ) -> Callable[[], None] | None:
        """Put an accepted message send in the outbox; hand it over now only when nobody here did yet and
        the stream is up (else it is held, and the next session writes it)."""
        assert self.outbox is not None
        entry = self.outbox.accept(
            tenant_id, account, op.stanza_id, _message_id(op.operation_id), _attempt_id(op.operation_id),
            request, body, received_at,
        )
        if not self.outbox.should_write(entry):
            return None
        if self.providers[account].health().stream_status != "connected":
            self.outbox.hold(entry)
            return None
        if dispatch is None:
            return None
        outbox, go = self.outbox, dispatch

        def hand_over() -> None:
            outbox.handed_over(entry.stanza_id)
            go()

        return hand_over

    def _may_come_back(self, account: str) -> bool:
        """Whether a stream that is down may come back (a failed account, e.g. refused credentials, won't)."""
        provider = self.providers.get(account)
        return provider is not None and provider.health().stream_status != "failed"

    def write_from_outbox(self, entry: OutboxEntry) -> None:
        """The outbox writes an entry's current attempt (after a restart, a lost session, a held wait)."""
        body = entry.body or ""
        self._dispatch(entry.tenant_id, entry.account_ref, entry.request, body, entry.stanza_id,
                       entry.message_id, entry.attempt_id)

    def _replayed(self, operation: IdempotentOperation) -> dict[str, Any]:
        """A replay's stored result, with where the send really is (``outbox_state``); a send still only
        accepted that nobody here is writing is carried out now."""
        result = dict(operation.result or {})
        if self.outbox is None or not result.get("accepted"):
            return result
        account = self._account_of(operation)
        stream_up = account is not None and self.providers[account].health().stream_status == "connected"
        entry = self.outbox.replayed(operation.tenant_id, operation.stanza_id, stream_up)
        if entry is not None:
            result["outbox_state"] = entry.state
        return result

    def _account_of(self, operation: IdempotentOperation) -> str | None:
        attempt = self.store.get_attempt(operation.tenant_id, _attempt_id(operation.operation_id))
        return attempt.account_ref if attempt is not None and attempt.account_ref in self.providers else None

    def _start_timers(self, tenant_id: str, request: Mapping[str, Any], outbound: OutboundMessage) -> None:
        """Receipt timeout (per request, else the configured default), optional marker timeout, expiry."""
        if self.timers is None or outbound.message_id is None:
            return
        options = request.get("options") or {}
        sent_at = self.clock()
        message_id, attempt_id = outbound.message_id, outbound.attempt_id
        if outbound.request_receipt:
            timeout = _seconds(options.get("receipt_timeout_s"))
            self.timers.schedule_receipt_timeout(tenant_id, message_id, sent_at, timeout, attempt_id)
        if outbound.markable and options.get("marker_timeout_s") is not None:
            timeout = _seconds(options["marker_timeout_s"])
            self.timers.schedule_marker_timeout(tenant_id, message_id, sent_at, timeout, attempt_id)
        if request.get("expires_at"):
            self.timers.schedule_expiry(tenant_id, message_id, _timestamp(request["expires_at"]))

    def _record_outbound(self, tenant_id: str, from_jid: str, sent: OutboundRecord, stanza_type: str) -> None:
        """Remember the stanza as sent, so even the fastest answer correlates."""
        self.store.record_stanza(
            XmppStanza(
                tenant_id=tenant_id,
                stanza_ref=sent.stanza_id,
                direction="outbound",
                stanza_type=stanza_type,
                from_jid=from_jid,
                to_jid=sent.to_jid,
                message_type=sent.message_type,
                endpoint_type=sent.endpoint_type,
                stanza_id=sent.stanza_id,
                origin_id=sent.origin_id,
                message_id=sent.message_id,
                attempt_id=sent.attempt_id,
                receipt_requested=sent.receipt_requested,
                markable=sent.markable,
                sent_at=sent.sent_at or self.clock(),
            )
        )

    def _body(self, action_type: str, request: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """The message text and, when rendering failed, why."""
        if action_type == "interaction.send_command_prompt":
            keywords = " / ".join(request["expected_keywords"])
            return f"{request['prompt']}\n\nReply: {keywords}", None
        if action_type == "feed.publish_item":
            return atom_entry(request["item"]), None
        content = request.get("content")
        if content is not None:
            body, error = content["body"], None
        else:
            rendered = self.templates.render(request["template_ref"], request.get("variables") or {})
            body, error = rendered.body, rendered.error
        if action_type == "interaction.request_acknowledgement" and body is not None:
            keywords = " / ".join(request.get("expected_keywords") or ["ACK"])
            body = f"{body}\n\nReply {keywords} to acknowledge."
        return body, error

    def _pre_send_refusal(
        self,
        tenant: Tenant,
        account: str,
        to_jid: str,
        render_error: str | None,
        request: Mapping[str, Any],
        check_stream: bool = True,
    ) -> str | None:
        """The §12.1 reason the adapter refuses to send, in the table's order; None to go ahead.

        ``check_stream`` is off when scheduling: the stream is checked when the message is due."""
        if not to_jid:
            return "missing_jid"
        if not is_valid_jid(to_jid):
            return "invalid_jid"
        if render_error is not None:
            return "render_failed"
        if account not in tenant.accounts or account not in self.providers:
            return "account_missing"
        if check_stream and self.providers[account].health().stream_status != "connected":
            return "stream_unavailable"
        if self.store.suppression(tenant.id, bare(to_jid)) is not None:
            return "suppressed"
        if self._lacks_mandatory_extension(account, to_jid, request.get("options") or {}):
            return "unsupported_extension"
        return None

    def _lacks_mandatory_extension(self, account: str, to_jid: str, options: Mapping[str, Any]) -> bool:
        """A receipt or displayed marker the request makes mandatory, which the recipient's client is known
        not to support (unknown capabilities never refuse)."""
        if self.capabilities is None:
            return False
        wanted = [
            feature
            for feature, option in (
                (FEATURE_RECEIPTS, "require_receipts"),
                (FEATURE_MARKERS, "require_displayed"),
            )
            if options.get(option)
        ]
        return any(self.capabilities(account, to_jid, feature) is False for feature in wanted)

    def _with_original(self, tenant: Tenant, request: Mapping[str, Any]) -> Mapping[str, Any]:
        """A reminder inherits the original's recipient (when it names none), case and participant."""
        original_id = request["original_operation_id"]
        message = self.store.get_message(tenant.id, _message_id(original_id))
        attempt = self.store.get_attempt(tenant.id, _attempt_id(original_id))
        if message is None or attempt is None:
            raise InvalidAction(
                [("original_operation_id", "no message with this operation id for this tenant")], status=404
            )
        inherited: dict[str, Any] = {
            "target_endpoint": {"endpoint_type": attempt.to_endpoint_type, "value": attempt.to_jid},
            "coordination_case_id": message.case_id,
            "participant_id": message.participant_id,
            "account": attempt.account_ref,
        }
        return {**{k: v for k, v in inherited.items() if v is not None}, **request}

    async def _join_room_of(
        self, tenant: Tenant, request: Mapping[str, Any], op: IdempotentOperation
    ) -> RoomJoin | None:
        """Join the room a groupchat goes to; a failed join is not a refusal: the room's answer to the
        message is the evidence (item-not-found, not-acceptable, forbidden)."""
        target = request.get("target_endpoint") or {}
        account = request.get("account") or tenant.default_account
        room = _target_jid(target)
        if (
            target.get("endpoint_type") != "muc_room_jid"
            or account not in self.providers
            or not is_valid_jid(room)
        ):
            return None
        nick = (request.get("options") or {}).get("nick") or bare(self.account_jids[account]).partition("@")[
            0
        ]
        return await self.providers[account].join_room(
            bare(room), nick, message_id=_message_id(op.operation_id),
            attempt_id=_attempt_id(op.operation_id),
        )

    def _cancel(
        self, tenant: Tenant, request: Mapping[str, Any], op: IdempotentOperation, received_at: datetime
    ) -> dict[str, Any]:
        """Cancel a scheduled message still held locally; anything else is refused, with the reason."""
        attempt = self.store.get_attempt(tenant.id, _attempt_id(request["operation_id"]))
        base = {
            "request_id": request["request_id"],
            "adapter_id": ADAPTER_ID,
            "action_type": "notification.cancel",
            "adapter_operation_id": op.operation_id,
            "xmpp_message_id": attempt.message_id if attempt else None,
            "assessment": None,
            "initial_events": [],
            "received_at": received_at.isoformat(),
        }
        if attempt is None:
            return {**base, "accepted": False, "action_state": "refused", "reason": "unknown_operation"}
        pending = self.pending
        if (
            attempt.state != SCHEDULED_STATE
            or pending is None
            or not pending.cancel(tenant.id, request["operation_id"])
        ):
            refusal = f"not_queued:{attempt.state}"
            return {**base, "accepted": False, "action_state": "refused", "reason": refusal}
        message = self.store.get_message(tenant.id, attempt.message_id)
        assert message is not None, "an attempt's message is created with it"
        cancelled = _OwnEvidence(tenant.id, message, attempt.attempt_id, attempt.to_jid, received_at,
                                 _once("adapter_cancelled", attempt.stanza_id or attempt.attempt_id))
        classification, events = self._record({"kind": "adapter_cancelled"}, cancelled)
        return {**base, "accepted": True, "action_state": "completed", "reason": None,
                "assessment": _assessment(classification), "initial_events": events}

    async def send_scheduled(self, tenant: Tenant, operation_id: str) -> None:
        """Send a held notification.schedule request now that it is due (the stream is checked now). The
        request is taken out durably before the stanza goes out, so it is sent at most once."""
        assert self.pending is not None
        with self.store.transaction():
            request = self.pending.release(tenant.id, operation_id)
            attempt = self.store.get_attempt(tenant.id, _attempt_id(operation_id))
            message = self.store.get_message(tenant.id, _message_id(operation_id))
            if request is not None and attempt is not None and attempt.state == SCHEDULED_STATE:
                self.store.update_attempt(tenant.id, attempt.attempt_id, state="send_requested")
        await self.store.durable()
        if request is None or attempt is None or message is None or attempt.state != SCHEDULED_STATE:
            return
        body, render_error = self._body("notification.schedule", request)
        reason = self._pre_send_refusal(tenant, attempt.account_ref, attempt.to_jid, render_error, request)
        if reason is not None:
            refused = _OwnEvidence(tenant.id, message, attempt.attempt_id, attempt.to_jid, self.clock())
            self._record({"kind": "request_rejected", "reject_reason": reason}, refused)
            return
        assert attempt.stanza_id is not None
        self._dispatch(
            tenant.id,
            attempt.account_ref,
            request,
            body or "",
            attempt.stanza_id,
            message.message_id,
            attempt.attempt_id,
        )

    def _sync_action(
        self,
        tenant: Tenant,
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
            self.store.suppress(tenant.id, jid, reason=request.get("reason"))
        elif action_type == "recipient.unsuppress":
            self.store.unsuppress(tenant.id, jid)
        else:
            self.store.upsert_endpoint(
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

    def _classified(self, fact: dict[str, Any]) -> Classification:
        """An action's own facts (accepted; refused for a reason) are few: each is classified once."""
        key = (self.classifier.policy.version, tuple(sorted(fact.items())))
        found = self._own_facts.get(key)
        if found is None:
            found = self._own_facts[key] = self.classifier.classify(fact)
        return found

    def _record(
        self, fact: dict[str, Any], own: _OwnEvidence
    ) -> tuple[Classification, list[dict[str, str]]]:
        """Classify one of the action's own facts and hand it to the recorder."""
        classification = self._classified(fact)
        stored = self.recorder.record(own.evidence(classification))
        return classification, _summaries(stored.stored)

    def accepted_result(
        self, tenant_id: str, action_type: str, request: Mapping[str, Any], received_at: datetime
    ) -> dict[str, Any]:
        """The result ``_send`` answers for a send it accepts, computed without the store: an API worker
        answers with it before the core records the same evidence (the event ids are derived, not drawn)."""
        operation_id = idempotency.operation_id(tenant_id, request["idempotency_key"])
        classification = self._classified({"kind": "adapter_accepted"})
        return {
            **_result_base(action_type, request, operation_id, received_at),
            "accepted": True,
            "action_state": "accepted",
            "reason": None,
            "assessment": _assessment(classification),
            "initial_events": _summaries(self.accepted_events(tenant_id, request, received_at)),
        }

    def accepted_events(
        self, tenant_id: str, request: Mapping[str, Any], received_at: datetime
    ) -> tuple[EvidenceEvent, ...]:
        """The evidence a send accepted at ``received_at`` is recorded with (not stored here)."""
        key = request["idempotency_key"]
        operation = IdempotentOperation(
            tenant_id,
            key,
            "",
            idempotency.operation_id(tenant_id, key),
            idempotency.stanza_id(tenant_id, key),
            received_at,
            replayed=False,
        )
        message = _message(tenant_id, request["action_type"], request, operation, received_at)
        to_jid = _target_jid(request.get("target_endpoint") or {}) or None
        own = _OwnEvidence(tenant_id, message, _attempt_id(operation.operation_id), to_jid, received_at,
                           _once("adapter_accepted", operation.stanza_id))
        return self.recorder.events(own.evidence(self._classified({"kind": "adapter_accepted"})))


@dataclass(frozen=True)
class _OwnEvidence:
    """What one of a send's own outcomes (accepted, refused, cancelled) is about, for the recorder."""

    tenant_id: str
    message: XmppMessage
    attempt_id: str
    to_jid: str | None
    at: datetime
    dedupe: DedupeBasis | None = None
    to_type: str | None = None

    def evidence(self, classification: Classification) -> Evidence:
        return Evidence(
            tenant_id=self.tenant_id,
            classification=classification,
            observed_at=self.at,
            message_id=self.message.message_id,
            attempt_id=self.attempt_id,
            endpoint_jid=self.to_jid,
            endpoint_type=self.to_type,
            dedupe=self.dedupe,
            message=self.message,
        )


def _send_to(provider: XmppProvider, endpoint_type: str, outbound: OutboundMessage) -> None:
    if endpoint_type == "muc_room_jid":
        provider.send_groupchat(outbound)
    else:
        provider.send_message(outbound)


def _message(
    tenant_id: str,
    action_type: str,
    request: Mapping[str, Any],
    op: IdempotentOperation,
    received_at: datetime,
) -> XmppMessage:
    """The message a send creates: case and participant from the request, else its tracking context."""
    tracking = dict(request.get("tracking_context") or {})
    if action_type == "notification.send_reminder":
        tracking["reminder_of"] = request["original_operation_id"]
    return XmppMessage(
        tenant_id=tenant_id,
        message_id=_message_id(op.operation_id),
        created_at=received_at,
        case_id=request.get("coordination_case_id") or tracking.get("coordination_case_id"),
        participant_id=request.get("participant_id") or tracking.get("participant_id"),
        purpose=action_type,
        template_ref=request.get("template_ref"),
        tracking_context=tracking,
    )


def _message_id(operation_id: str) -> str:
    return "xmppmsg_" + operation_id.removeprefix("xmppop_")


def _attempt_id(operation_id: str) -> str:
    return "xmppatt_" + operation_id.removeprefix("xmppop_")


def _once(kind: str, stanza_id: str) -> DedupeBasis:
    """A send's accepted or refused evidence exists once per operation, also when it is recorded again."""
    return DedupeBasis(kind=kind, sender_full_jid="", stanza_id=stanza_id)


def _result_base(
    action_type: str, request: Mapping[str, Any], operation_id: str, received_at: datetime
) -> dict[str, Any]:
    return {
        "request_id": request["request_id"],
        "adapter_id": ADAPTER_ID,
        "action_type": action_type,
        "adapter_operation_id": operation_id,
        "xmpp_message_id": _message_id(operation_id),
        "received_at": received_at.isoformat(),
    }


def _summaries(events: Sequence[EvidenceEvent]) -> list[dict[str, str]]:
    """The result's ``initial_events``: the emitted ones."""
    return [
        {"event_type": e.event_type, "event_id": e.event_id, "occurred_at": e.occurred_at.isoformat()}
        for e in events
        if e.emitted
    ]


def _assessment(classification: Classification) -> dict[str, str]:
    a = classification.assessment
    return {"category": a.category, "subclass": a.subclass, "confidence": a.confidence}


def _target_jid(target: Mapping[str, Any]) -> str:
    """The address a stanza goes to: the PubSub service for a node, else the endpoint's value."""
    field = "service" if target.get("endpoint_type") == "pubsub_node" else "value"
    return (target.get(field) or "").strip()


def _endpoint_type(target: Mapping[str, Any], to_jid: str) -> str:
    """A room, node or component as the request names it; else bare or full JID by the address (§9.4)."""
    named = target.get("endpoint_type")
    return named if named in TYPED_ENDPOINTS else endpoint_type_of(to_jid)


def _message_type(target: Mapping[str, Any], requested: str) -> str:
    return "groupchat" if target.get("endpoint_type") == "muc_room_jid" else requested


def _timestamp(text: str) -> datetime:
    """A schema-checked ISO 8601 timestamp with a zone."""
    return datetime.fromisoformat(text)


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def atom_entry(item: Mapping[str, Any]) -> str:
    """A feed.publish_item item as the Atom entry published to the node (XEP-0060 §7.1 payload)."""
    parts = [f"<entry xmlns='{ATOM_NS}'><title>{escape(item['title'])}</title>"]
    if item.get("summary"):
        parts.append(f"<summary>{escape(item['summary'])}</summary>")
    if item.get("link"):
        parts.append(f"<link href={quoteattr(item['link'])}/>")
    parts.append("</entry>")
    return "".join(parts)
