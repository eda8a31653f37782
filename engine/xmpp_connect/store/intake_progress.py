"""How far the core has carried out an API worker intake (``xmpp_connect.sending.intake``), kept with the
evidence."""

from __future__ import annotations

from xmpp_connect.store.connection import SqlBase

PREFIX = "intake:"


class IntakeProgress(SqlBase):
    """One counter row per intake file (named by the intake's instance id)."""

    def intake_position(self, instance_id: str) -> int:
        """The last intake position carried out; 0 before the first."""
        row = self._one("SELECT last_value FROM counters WHERE name = ?", (PREFIX + instance_id,))
        return int(row["last_value"]) if row else 0

    def advance_intake_position(self, instance_id: str, seq: int) -> None:
        """Move the position forward (never back), in the caller's transaction when one is open."""
        with self._write() as conn:
            self._exec(
                conn,
                "INSERT INTO counters (name, last_value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET"
                " last_value = excluded.last_value WHERE counters.last_value < excluded.last_value",
                (PREFIX + instance_id, seq),
            )
