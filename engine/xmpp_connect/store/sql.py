"""The store over SQL: every table module composed into one class (backends add connections)."""

from __future__ import annotations

from xmpp_connect.store.audit import ChainAudit
from xmpp_connect.store.connection import StoreOptions
from xmpp_connect.store.dead_letters import DeadLetters
from xmpp_connect.store.endpoints import EndpointRecords
from xmpp_connect.store.erasure import Erasure
from xmpp_connect.store.evidence_log import EvidenceLog
from xmpp_connect.store.figures import OperationalFigures
from xmpp_connect.store.groups import GroupRecords
from xmpp_connect.store.held_requests import HeldRequests
from xmpp_connect.store.intake_progress import IntakeProgress
from xmpp_connect.store.leases import LeaseRecords
from xmpp_connect.store.messages import MessageRecords
from xmpp_connect.store.observations import ObservationRecords
from xmpp_connect.store.operations import IdempotentOperations
from xmpp_connect.store.outbox import OutboxRecords
from xmpp_connect.store.raw_events import RawEvents
from xmpp_connect.store.rows import EVENT_COLUMNS, event_row
from xmpp_connect.store.timer_table import TimerTable
from xmpp_connect.store.webhooks import WebhookRecords

__all__ = ["EVENT_COLUMNS", "SqlStore", "StoreOptions", "event_row"]


class SqlStore(
    MessageRecords,
    EvidenceLog,
    ObservationRecords,
    EndpointRecords,
    GroupRecords,
    RawEvents,
    DeadLetters,
    IdempotentOperations,
    HeldRequests,
    TimerTable,
    IntakeProgress,
    ChainAudit,
    Erasure,
    OutboxRecords,
    LeaseRecords,
    WebhookRecords,
    OperationalFigures,
):
    """Every store operation (the EvidenceStore interface), as SQL with ``?`` placeholders."""
