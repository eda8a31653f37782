"""Versioned schema migrations, written in SQL both SQLite and PostgreSQL accept.

A migration is applied once, in order, inside the transaction that records it in ``schema_migrations``.
Never edit an applied migration: add the next version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


CREATE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)

_INITIAL = (
    # The last position handed out per counter. Taking one row-locks it until commit, so evidence feed
    # positions become visible in commit order and a feed reader never skips one.
    "CREATE TABLE counters (name TEXT PRIMARY KEY, last_value BIGINT NOT NULL)",
    "INSERT INTO counters (name, last_value) VALUES ('evidence_feed', 0)",
    "INSERT INTO counters (name, last_value) VALUES ('stanza_send_order', 0)",
    """CREATE TABLE messages (
        tenant_id TEXT NOT NULL, message_id TEXT NOT NULL, case_id TEXT, participant_id TEXT,
        purpose TEXT, body_ref TEXT, template_ref TEXT, tracking_context TEXT NOT NULL,
        created_at TEXT NOT NULL, PRIMARY KEY (tenant_id, message_id))""",
    "CREATE INDEX messages_by_case ON messages (tenant_id, case_id, created_at)",
    "CREATE INDEX messages_by_participant ON messages (tenant_id, participant_id, created_at)",
    """CREATE TABLE attempts (
        tenant_id TEXT NOT NULL, attempt_id TEXT NOT NULL, message_id TEXT NOT NULL,
        account_ref TEXT NOT NULL, server_ref TEXT, from_jid TEXT NOT NULL, to_jid TEXT NOT NULL,
        to_endpoint_type TEXT NOT NULL, message_type TEXT NOT NULL, stanza_id TEXT, origin_id TEXT,
        server_id TEXT, state TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, attempt_id))""",
    "CREATE INDEX attempts_by_message ON attempts (tenant_id, message_id, created_at)",
    """CREATE TABLE stanzas (
        tenant_id TEXT NOT NULL, stanza_ref TEXT NOT NULL, send_seq BIGINT NOT NULL,
        direction TEXT NOT NULL, stanza_type TEXT NOT NULL, message_type TEXT NOT NULL,
        endpoint_type TEXT NOT NULL, stanza_id TEXT, origin_id TEXT, stable_id TEXT,
        from_jid TEXT NOT NULL, to_jid TEXT NOT NULL, from_bare TEXT NOT NULL, to_bare TEXT NOT NULL,
        message_id TEXT, attempt_id TEXT, receipt_requested INTEGER NOT NULL, markable INTEGER NOT NULL,
        payload_ref TEXT, sent_at TEXT, received_at TEXT, raw_ref TEXT,
        PRIMARY KEY (tenant_id, stanza_ref))""",
    "CREATE INDEX stanzas_by_id ON stanzas (tenant_id, stanza_id)",
    "CREATE INDEX stanzas_by_origin_id ON stanzas (tenant_id, origin_id)",
    "CREATE INDEX stanzas_by_stable_id ON stanzas (tenant_id, stable_id)",
    "CREATE INDEX stanzas_by_conversation ON stanzas (tenant_id, direction, to_bare, send_seq)",
    "CREATE INDEX stanzas_by_message ON stanzas (tenant_id, message_id)",
    """CREATE TABLE endpoints (
        tenant_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, endpoint_type TEXT NOT NULL,
        jid TEXT NOT NULL, bare_jid TEXT, resource TEXT, display_name TEXT,
        verification_state TEXT NOT NULL, metadata TEXT NOT NULL,
        PRIMARY KEY (tenant_id, endpoint_id))""",
    "CREATE INDEX endpoints_by_jid ON endpoints (tenant_id, jid)",
    """CREATE TABLE suppressions (
        tenant_id TEXT NOT NULL, bare_jid TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
        created_at TEXT NOT NULL, PRIMARY KEY (tenant_id, bare_jid))""",
    """CREATE TABLE evidence_events (
        seq BIGINT PRIMARY KEY, tenant_id TEXT NOT NULL, event_id TEXT NOT NULL,
        event_type TEXT NOT NULL, scenario TEXT NOT NULL, rule_id TEXT, policy_version TEXT NOT NULL,
        category TEXT NOT NULL, subclass TEXT NOT NULL, confidence TEXT NOT NULL, grade TEXT,
        attempt_state TEXT, message_id TEXT, attempt_id TEXT, case_id TEXT, participant_id TEXT,
        correlation_id TEXT, endpoint_ref TEXT, raw_ref TEXT, occurred_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL, late INTEGER NOT NULL, inferred INTEGER NOT NULL,
        emitted INTEGER NOT NULL, scope TEXT NOT NULL, dedupe_key TEXT, notes TEXT NOT NULL,
        fact TEXT NOT NULL, UNIQUE (tenant_id, event_id))""",
    "CREATE INDEX evidence_by_tenant ON evidence_events (tenant_id, seq)",
    "CREATE INDEX evidence_by_message ON evidence_events (tenant_id, message_id, seq)",
    "CREATE INDEX evidence_by_case ON evidence_events (tenant_id, case_id, seq)",
    "CREATE INDEX evidence_by_participant ON evidence_events (tenant_id, participant_id, seq)",
    "CREATE INDEX evidence_by_endpoint ON evidence_events (tenant_id, endpoint_ref, seq)",
    """CREATE TABLE receipts_markers (
        tenant_id TEXT NOT NULL, record_id TEXT NOT NULL, kind TEXT NOT NULL, marker_type TEXT,
        original_stanza_id TEXT NOT NULL, message_id TEXT, from_jid TEXT NOT NULL, to_jid TEXT NOT NULL,
        resource TEXT, received_at TEXT NOT NULL, confidence TEXT NOT NULL, inferred INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, record_id))""",
    "CREATE INDEX receipts_markers_by_message ON receipts_markers (tenant_id, message_id, received_at)",
    """CREATE TABLE inbound_messages (
        tenant_id TEXT NOT NULL, inbound_message_id TEXT NOT NULL, from_jid TEXT NOT NULL,
        to_jid TEXT NOT NULL, message_type TEXT NOT NULL, received_at TEXT NOT NULL,
        command_classification TEXT NOT NULL, body_text TEXT, stanza_id TEXT, message_id TEXT,
        raw_ref TEXT, PRIMARY KEY (tenant_id, inbound_message_id))""",
    "CREATE INDEX inbound_by_message ON inbound_messages (tenant_id, message_id, received_at)",
    """CREATE TABLE presence_current (
        tenant_id TEXT NOT NULL, bare_jid TEXT NOT NULL, resource TEXT NOT NULL,
        availability TEXT NOT NULL, priority INTEGER, status_text TEXT, observed_at TEXT NOT NULL,
        subscription_state TEXT NOT NULL, confidence TEXT NOT NULL,
        PRIMARY KEY (tenant_id, bare_jid, resource))""",
    """CREATE TABLE presence_history (
        tenant_id TEXT NOT NULL, bare_jid TEXT NOT NULL, resource TEXT NOT NULL,
        availability TEXT NOT NULL, priority INTEGER, observed_at TEXT NOT NULL,
        subscription_state TEXT NOT NULL)""",
    "CREATE INDEX presence_history_by_jid ON presence_history (tenant_id, bare_jid, observed_at)",
    "CREATE INDEX presence_history_by_time ON presence_history (observed_at)",
    """CREATE TABLE muc_rooms (
        tenant_id TEXT NOT NULL, room_jid TEXT NOT NULL, room_name TEXT, room_type TEXT NOT NULL,
        occupant_mapping_confidence TEXT NOT NULL, supports_history INTEGER, supports_markers INTEGER,
        metadata TEXT NOT NULL, PRIMARY KEY (tenant_id, room_jid))""",
    """CREATE TABLE muc_events (
        tenant_id TEXT NOT NULL, muc_event_id TEXT NOT NULL, room_jid TEXT NOT NULL,
        event_type TEXT NOT NULL, occurred_at TEXT NOT NULL, occupant_jid TEXT, occupant_nick TEXT,
        participant_id TEXT, message_id TEXT, confidence TEXT NOT NULL,
        PRIMARY KEY (tenant_id, muc_event_id))""",
    "CREATE INDEX muc_events_by_room ON muc_events (tenant_id, room_jid, occurred_at)",
    """CREATE TABLE pubsub_nodes (
        tenant_id TEXT NOT NULL, service_jid TEXT NOT NULL, node_id TEXT NOT NULL,
        access_model TEXT NOT NULL, publisher_model TEXT NOT NULL, metadata TEXT NOT NULL,
        PRIMARY KEY (tenant_id, service_jid, node_id))""",
    """CREATE TABLE pubsub_items (
        tenant_id TEXT NOT NULL, service_jid TEXT NOT NULL, node_id TEXT NOT NULL, item_id TEXT NOT NULL,
        published_at TEXT NOT NULL, payload_ref TEXT, publisher_jid TEXT, message_id TEXT,
        correlation TEXT NOT NULL, PRIMARY KEY (tenant_id, service_jid, node_id, item_id))""",
    """CREATE TABLE raw_events (
        tenant_id TEXT NOT NULL, raw_event_id TEXT NOT NULL, source TEXT NOT NULL, storage_ref TEXT,
        received_at TEXT NOT NULL, redacted INTEGER NOT NULL, content TEXT, purged_at TEXT,
        PRIMARY KEY (tenant_id, raw_event_id))""",
    "CREATE INDEX raw_events_by_time ON raw_events (received_at)",
    """CREATE TABLE dead_letters (
        tenant_id TEXT NOT NULL, dead_letter_id TEXT NOT NULL, stage TEXT NOT NULL, reason TEXT NOT NULL,
        detail TEXT NOT NULL, raw_ref TEXT, created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, dead_letter_id))""",
    "CREATE INDEX dead_letters_by_time ON dead_letters (tenant_id, created_at, dead_letter_id)",
    """CREATE TABLE idempotency (
        tenant_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, payload_hash TEXT NOT NULL,
        operation_id TEXT NOT NULL, stanza_id TEXT NOT NULL, result TEXT, created_at TEXT NOT NULL,
        completed_at TEXT, PRIMARY KEY (tenant_id, idempotency_key))""",
    """CREATE TABLE timers (
        timer_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, message_id TEXT NOT NULL,
        attempt_id TEXT, timer TEXT NOT NULL, due_at TEXT NOT NULL, lease_until TEXT, fired_at TEXT,
        created_at TEXT NOT NULL, UNIQUE (tenant_id, message_id, timer))""",
    "CREATE INDEX timers_pending ON timers (due_at) WHERE fired_at IS NULL",
)

_HELD_REQUESTS = (
    # notification.schedule requests waiting for their ``scheduled_send`` timer; a row is taken out exactly
    # once (sent or cancelled), so replicas sharing the store never both send it.
    """CREATE TABLE held_requests (
        tenant_id TEXT NOT NULL, operation_id TEXT NOT NULL, message_id TEXT NOT NULL,
        request TEXT NOT NULL, body_kept INTEGER NOT NULL, send_at TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, operation_id))""",
    "CREATE INDEX held_requests_by_message ON held_requests (tenant_id, message_id)",
)

_EXPECTED_EVIDENCE = (
    # What evidence the target can produce (e.g. a room's disco features), as a JSON list; NULL: not known.
    "ALTER TABLE attempts ADD COLUMN expected_evidence TEXT",
)

_EVIDENCE_SENDER_GRADE_AND_STATE_EVENT = (
    # Who sent a piece of evidence (full JID and resource, or opaque references in metadata-only mode) and
    # the §14 grade dimensions it was recorded with (JSON; empty for ungraded evidence).
    "ALTER TABLE evidence_events ADD COLUMN sender_jid TEXT",
    "ALTER TABLE evidence_events ADD COLUMN sender_resource TEXT",
    "ALTER TABLE evidence_events ADD COLUMN grade_dimensions TEXT NOT NULL DEFAULT '{}'",
    # The evidence that decided the attempt's state: new evidence is compared with it alone.
    "ALTER TABLE attempts ADD COLUMN state_event_id TEXT",
)

_EVIDENCE_CHAIN = (
    # The tenant's hash chain over the evidence log (model/chain.py, spec/audit.md). Rows appended before
    # this migration keep NULL hashes: the chain starts after them.
    "ALTER TABLE evidence_events ADD COLUMN raw_sha256 TEXT",
    "ALTER TABLE evidence_events ADD COLUMN personal_salt TEXT",
    "ALTER TABLE evidence_events ADD COLUMN personal_sha256 TEXT",
    "ALTER TABLE evidence_events ADD COLUMN prev_event_id TEXT",
    "ALTER TABLE evidence_events ADD COLUMN entry_hash TEXT",
    "ALTER TABLE evidence_events ADD COLUMN chain_hash TEXT",
    # The stored (redacted) raw stanza's sha256: it outlives the content's retention purge.
    "ALTER TABLE raw_events ADD COLUMN content_sha256 TEXT",
    """CREATE TABLE chain_checkpoints (
        tenant_id TEXT NOT NULL, checkpoint_id TEXT NOT NULL, head_event_id TEXT, head_hash TEXT NOT NULL,
        entries BIGINT NOT NULL, signed_at TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL,
        PRIMARY KEY (tenant_id, checkpoint_id))""",
    "CREATE INDEX chain_checkpoints_by_time ON chain_checkpoints (tenant_id, signed_at)",
)

_OUTBOX = (
    # Each accepted message send and how far it got (spec/outbox.md); keyed by account for hand-over.
    """CREATE TABLE outbox (
        tenant_id TEXT NOT NULL, stanza_id TEXT NOT NULL, account_ref TEXT NOT NULL, seq BIGINT NOT NULL,
        message_id TEXT NOT NULL, attempt_id TEXT NOT NULL, state TEXT NOT NULL, request TEXT NOT NULL,
        body TEXT, accepted_at TEXT NOT NULL, written_at TEXT, acked_at TEXT, ended_reason TEXT,
        writes INTEGER NOT NULL, held INTEGER NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, stanza_id))""",
    "CREATE INDEX outbox_open_by_account ON outbox (account_ref, state, seq)",
    "CREATE INDEX outbox_by_message ON outbox (tenant_id, message_id)",
    "INSERT INTO counters (name, last_value) VALUES ('outbox_order', 0)",
)

_WEBHOOKS = (
    # Webhook subscriptions per tenant and how far each has been delivered (a feed position, moved forward
    # after the receiver took an event or it went dead). A config-file subscription keeps its secret in the
    # config (secret NULL here); one created over the API keeps the secret it was given at creation.
    """CREATE TABLE webhook_subscriptions (
        tenant_id TEXT NOT NULL, subscription_id TEXT NOT NULL, url TEXT NOT NULL, event_types TEXT NOT NULL,
        secret TEXT, origin TEXT NOT NULL, position BIGINT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, subscription_id))""",
    # Events a receiver never took: retried until the schedule ran out, or refused with a 4xx.
    """CREATE TABLE webhook_dead_deliveries (
        tenant_id TEXT NOT NULL, subscription_id TEXT NOT NULL, event_id TEXT NOT NULL, seq BIGINT NOT NULL,
        attempts INTEGER NOT NULL, reason TEXT NOT NULL, last_status INTEGER, dead_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, subscription_id, event_id))""",
)

_REPLICA_LEASES = (
    # Who owns each XMPP account (spec/replicas.md): the owner replica, a fencing token that grows with every
    # acquisition, when it was acquired and when it expires, in seconds since the epoch by the database's own
    # clock. A released lease keeps its token (owner NULL), so the next owner's token is still larger.
    """CREATE TABLE account_leases (
        account_ref TEXT PRIMARY KEY, owner TEXT, token BIGINT NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        acquired_at DOUBLE PRECISION NOT NULL)""",
    # The replicas sharing the store and their weights; a replica is alive until its heartbeat expires.
    """CREATE TABLE replicas (
        replica_id TEXT PRIMARY KEY, weight DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION NOT NULL)""",
    # When an at_most_once send was last handed to a transport (committed before the hand-over): a later
    # owner finding it still ``accepted`` cannot tell whether it reached the server, so it ends it explicitly.
    "ALTER TABLE outbox ADD COLUMN handed_at TEXT",
)

_LEANER_APPENDS = (
    # Written on every send, read by no query of the service (only the store's list_stanzas, list_receipts,
    # list_markers and list_inbound filter on these columns, and nothing but tests calls them).
    "DROP INDEX stanzas_by_message",
    "DROP INDEX receipts_markers_by_message",
    "DROP INDEX inbound_by_message",
    # The chain head of the tenant that appended last, kept (on PostgreSQL) in the feed counter's row, which
    # every append locks and returns anyway: a writer after another writer needs no read of the log's head.
    "ALTER TABLE counters ADD COLUMN head_tenant TEXT",
    "ALTER TABLE counters ADD COLUMN head_event_id TEXT",
    "ALTER TABLE counters ADD COLUMN head_hash TEXT",
)

_PARTIAL_INDEXES = (
    # The account's open sends (what a new session writes or ends), indexed alone: a send's written and
    # acked updates no longer move its entry between state ranges of an index over every send ever
    # accepted, and the ack takes it out. outbox_open's query repeats this WHERE clause word for word.
    "DROP INDEX outbox_open_by_account",
    "CREATE INDEX outbox_open ON outbox (account_ref, seq)"
    " WHERE state IN ('accepted', 'written') AND ended_reason IS NULL",
    # Only stanzas a server gave a stable id (rooms' XEP-0359 stanza-id) are looked up by it
    # (``stable_id = ?`` implies NOT NULL on both backends): a one-to-one send adds no entry.
    "DROP INDEX stanzas_by_stable_id",
    "CREATE INDEX stanzas_by_stable_id ON stanzas (tenant_id, stable_id) WHERE stable_id IS NOT NULL",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _INITIAL),
    Migration(2, "held scheduled requests", _HELD_REQUESTS),
    Migration(3, "expected evidence per attempt", _EXPECTED_EVIDENCE),
    Migration(4, "evidence hash chain and signed checkpoints", _EVIDENCE_CHAIN),
    Migration(5, "webhook subscriptions and dead deliveries", _WEBHOOKS),
    Migration(6, "durable outbox", _OUTBOX),
    Migration(7, "evidence sender, grade dimensions, state event", _EVIDENCE_SENDER_GRADE_AND_STATE_EVENT),
    Migration(8, "account leases, replicas, outbox hand-over time", _REPLICA_LEASES),
    Migration(9, "unread indexes dropped, the chain head beside the feed counter", _LEANER_APPENDS),
    Migration(10, "partial indexes: the outbox's open sends, stanzas' stable ids", _PARTIAL_INDEXES),
)
