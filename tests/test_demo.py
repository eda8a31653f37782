"""`scripts/demo --once` runs to completion against a real Prosody and prints the ladder of a message that
a real client received, displayed and acknowledged with an ACK reply."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from xmpp_connect.app.demo import ladder

REPO = Path(__file__).resolve().parents[1]
RUNGS = [
    ("notification.attempt.accepted_by_adapter", "undef.pending"),
    ("notification.attempt.accepted_by_provider", "undef.sent_to_server_only"),
    ("notification.attempt.accepted_by_provider", "undef.server_acknowledged_only"),
    ("notification.endpoint.accepted", "success.delivered_to_client"),
    ("interaction.notification.opened", "success.displayed_by_client"),
    ("interaction.acknowledgement_recorded", "success.acknowledged_by_client"),
]


@pytest.mark.prosody
def test_demo_once_prints_the_ladder_of_a_real_message(tmp_path: Path) -> None:
    if shutil.which("prosody") is None:
        pytest.skip("prosody is not installed; scripts/demo installs it with apt-get")
    done = subprocess.run([str(REPO / "scripts" / "demo"), "--once", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    log = tmp_path / "service.log"
    service_log = log.read_text(errors="replace") if log.exists() else ""
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{service_log}"
    out = done.stdout
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+\s+[a-z]+\.", line)]
    seen = [(row[1], row[3]) for row in rows]
    assert all(rung in seen for rung in RUNGS), seen
    # One stream carries the recipient's answers in order; the server's ack may come before or after them.
    chain = [rung for rung in RUNGS if rung[1] != "undef.server_acknowledged_only"]
    positions = [seen.index(rung) for rung in chain]
    assert positions == sorted(positions), seen
    assert "assessment: success / success.acknowledged_by_client (confidence high)" in out
    assert "stopping the service, the recipient and Prosody" in out
    assert "Traceback" not in done.stderr


def test_ladder_is_a_table_with_times_relative_to_the_first_entry() -> None:
    entries = [
        {"occurred_at": "2026-01-01T12:00:00+00:00", "event_type": "notification.attempt.accepted_by_adapter",
         "scenario": "adapter_accepted", "assessment": {"subclass": "undef.pending"}, "evidence_grade": None},
        {"occurred_at": "2026-01-01T12:00:00.250+00:00", "event_type": "notification.endpoint.accepted",
         "scenario": "delivered_to_client", "assessment": {"subclass": "success.delivered_to_client"},
         "evidence_grade": "delivery_receipt", "late": True, "sender": {"resource": "phone"}},
    ]
    lines = ladder(entries).splitlines()
    assert lines[0].split() == ["+ms", "event", "scenario", "assessment", "grade", "resource", "late",
                                "inferred"]
    assert lines[1].split() == ["0", "notification.attempt.accepted_by_adapter", "adapter_accepted",
                                "undef.pending", "-", "-", "no", "no"]
    assert lines[2].split() == ["250", "notification.endpoint.accepted", "delivered_to_client",
                                "success.delivered_to_client", "delivery_receipt", "phone", "yes", "no"]
