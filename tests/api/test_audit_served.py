"""The audit trail of the service as it really runs (`xmpp-connect serve` in a subprocess, real Prosody):
the archive query through the CLI records archive evidence, a checkpoint is signed at start, and after
SIGTERM `audit verify` checks the store and `audit verify --bundle` an exported bundle, offline."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prosody import ProsodyServer
from recipients import Recipient
from test_served_process import CONFIG, PASSWORD_ENV, TOKEN, TOKEN_ENV, WAIT, Api, ServedProcess, send

from xmpp_connect.app.cli import main
from xmpp_connect.model.checkpoint import generate_private_key_pem

pytestmark = pytest.mark.prosody
AUDIT = "audit: {signing_key_file: audit.key, checkpoint_interval_s: 3600}\n"


@pytest.fixture
async def served(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[ServedProcess]:
    user = prosody.fresh_user("aud")
    (tmp_path / "audit.key").write_text(generate_private_key_pem(), encoding="utf-8")
    config_path = tmp_path / "xmpp-connect.yaml"
    config = CONFIG.format(
        jid=user.jid, password_env=PASSWORD_ENV, port=prosody.port, ca=prosody.cert_path, token_env=TOKEN_ENV
    )
    config_path.write_text(config + AUDIT)
    process = ServedProcess(config_path, user, tmp_path / "serve.log")
    try:
        await process.start()
        yield process
    finally:
        process.stop()


async def test_archive_cli_then_offline_verification_after_sigterm(
    served: ServedProcess, prosody: ProsodyServer, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    phone = await Recipient(prosody, prosody.fresh_user("rcpt"), "phone").online()
    async with served.client() as http:
        api = Api(http)
        try:
            status, result = await api.act(send(uuid.uuid4().hex[:8], phone.user.jid))
            assert status == 202, result
            message_id = result["xmpp_message_id"]
            await phone.next_message(WAIT)
            await api.wait_for_entry(message_id, "delivered_to_client")
        finally:
            await phone.offline()
        checkpoints = (await http.get("/adapter/audit/checkpoints")).json()["checkpoints"]
        assert checkpoints, "a checkpoint is signed when the service starts"
        public_key = (await http.get("/adapter/audit/public-key")).json()["public_key"]

    monkeypatch.setenv("XMPP_CONNECT_TOKEN", TOKEN)
    assert main(["archive", "query", "--message", message_id, "--url", served.base]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert any(
        e["archive_correlated"] and e["scenario"] == "archived_only" for e in outcome["archive_evidence"]
    )

    bundle = tmp_path / "case.jsonl"
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(PASSWORD_ENV, served.user.password)
    config = str(served.config_path)
    assert (
        main(
            [
                "export",
                "--config",
                config,
                "--tenant",
                "ops",
                "--case",
                "case_served",
                "--output",
                str(bundle),
            ]
        )
        == 0
    )
    assert await served.terminate() in (0, -signal.SIGTERM)

    assert main(["audit", "verify", "--config", config]) == 0
    assert "ops: " in capsys.readouterr().out
    (tmp_path / "public.key").write_text(public_key, encoding="utf-8")
    assert (
        main(["audit", "verify", "--bundle", str(bundle), "--public-key", str(tmp_path / "public.key")]) == 0
    )
    assert "verifies" in capsys.readouterr().out
    rows = [json.loads(line) for line in bundle.read_text(encoding="utf-8").splitlines()[1:]]
    scenarios = {r["row"]["scenario"] for r in rows if r["type"] == "entry"}
    assert {"delivered_to_client", "archived_only"} <= scenarios
