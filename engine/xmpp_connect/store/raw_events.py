"""Raw stanza preservation (§30) with redaction, and retention purges (§28)."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta

from xmpp_connect.store.chain import SaltSource
from xmpp_connect.store.connection import SqlBase, log
from xmpp_connect.store.records import (
    RAW_SOURCES,
    PurgeReport,
    RawEventRef,
)
from xmpp_connect.store.rows import check_allowed
from xmpp_connect.store.timestamps import from_text, from_text_or_none, to_text
from xmpp_connect.xmpp.redaction import redact_stanza


class RawEvents(SqlBase):
    """Raw stanzas (redacted by default) and the retention purge."""

    def record_raw(
        self,
        tenant_id: str,
        source: str,
        stanza_xml: str,
        received_at: datetime,
        storage_ref: str | None = None,
        offer: bool = False,
        take: bool = False,
        well_formed: bool = False,
    ) -> RawEventRef:
        """Preserve a raw stanza, redacted unless redaction is off (never unredacted in metadata-only
        mode). The stored content's sha256 is kept beside it and outlives a retention purge: the evidence
        chain covers that digest, not the stanza (spec/audit.md).

        A sent message is carried by the event that writes it and again by its ack: the first is kept with
        ``offer``; the second, with ``take``, references that row (its time is the write's) when this store
        offered the same text from the same source lately, and is kept anew only when it did not.

        ``well_formed``: the caller's XML parser took this very text (a stanza the pipeline read), so the
        redaction need not parse it again to prove it well-formed."""
        check_allowed(source, RAW_SOURCES, "raw event source")
        if take:
            offered = self._offered_raw.pop((tenant_id, source, stanza_xml))
            if offered is not None:
                self._raw_digests.put((tenant_id, offered[0].raw_event_id), offered[1])
                return offered[0]
        redact = self.options.redact_raw or self.options.metadata_only
        content = redact_stanza(stanza_xml, well_formed) if redact else stanza_xml
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
        ref = RawEventRef(tenant_id, new_raw_event_id(), source, received_at, redact, storage_ref)
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO raw_events (tenant_id, raw_event_id, source, storage_ref, received_at, redacted,"
                " content, content_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    ref.raw_event_id,
                    source,
                    storage_ref,
                    to_text(received_at),
                    int(redact),
                    content,
                    digest,
                ),
            )
        self._raw_digests.put((tenant_id, ref.raw_event_id), digest)
        if offer:
            self._offered_raw.put((tenant_id, source, stanza_xml), (ref, digest))
        return ref

    def get_raw(self, tenant_id: str, raw_event_id: str) -> tuple[RawEventRef, str | None] | None:
        """The reference and the stored (redacted) stanza; the content is None once purged."""
        row = self._one(
            "SELECT * FROM raw_events WHERE tenant_id = ? AND raw_event_id = ?", (tenant_id, raw_event_id)
        )
        if row is None:
            return None
        ref = RawEventRef(
            row["tenant_id"],
            row["raw_event_id"],
            row["source"],
            from_text(row["received_at"]),
            bool(row["redacted"]),
            row["storage_ref"],
            from_text_or_none(row["purged_at"]),
        )
        return ref, row["content"]

    def purge(
        self,
        now: datetime,
        raw_retention: timedelta | None,
        presence_retention: timedelta | None,
    ) -> PurgeReport:
        """Drop raw stanza content and presence history older than their retention (None keeps them).
        Raw references stay, marked purged, so evidence events still point somewhere."""
        raw = history = 0
        with self._write() as conn:
            if raw_retention is not None:
                raw = len(
                    self._exec(
                        conn,
                        "UPDATE raw_events SET content = NULL, purged_at = ? WHERE purged_at IS NULL"
                        " AND received_at < ? RETURNING raw_event_id",
                        (to_text(now), to_text(now - raw_retention)),
                    ).fetchall()
                )
            if presence_retention is not None:
                cutoff = to_text(now - presence_retention)
                history = len(
                    self._exec(
                        conn,
                        "DELETE FROM presence_history WHERE observed_at < ? RETURNING bare_jid",
                        (cutoff,),
                    ).fetchall()
                )
                self._exec(
                    conn, "UPDATE presence_current SET status_text = NULL WHERE observed_at < ?", (cutoff,)
                )
        log.info("retention purge raw_events=%d presence_history=%d", raw, history)
        return PurgeReport(raw, history)


def new_raw_event_id() -> str:
    """``raw_`` + the recording time and 20 random hex digits (spec/ids.md): each new row goes to the
    primary key's right edge, as the time-ordered ids of a send do. The time part is ``time_ordered``'s
    (milliseconds since the epoch, 12 hex digits), read from the clock without building a datetime; the
    random part cut from a block of ``os.urandom`` output (one system call per 256 ids, not one each),
    each block's bytes handed out once, as the chain's salts are."""
    return f"raw_{time.time_ns() // 1_000_000:012x}{_random_hex()[1][:20]}"


_random_hex = SaltSource().take
"""16 random bytes and their hex per call; an id takes the first 10 bytes' hex."""
