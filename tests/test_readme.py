"""The README's first request works when pasted into a shell: run as written against `xmpp-connect serve`
(only the port changed), it takes the message id from the first answer and reads the assessment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from xmpp_connect.app.local_prosody import free_loopback_port

REPO = Path(__file__).resolve().parents[1]
SERVE = "import sys; from xmpp_connect.app.cli import main; sys.exit(main(sys.argv[1:]))"


def first_request() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\n(    TOKEN=\$\(cat data/default-tenant\.token\)\n(?:    .*\n)+)", text)
    assert block is not None, "the README's first request is missing"
    return "\n".join(line[4:] for line in block.group(1).splitlines())


def test_the_first_request_works_when_pasted(tmp_path: Path) -> None:
    port = free_loopback_port()
    process = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--port", str(port)], cwd=tmp_path,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={k: v for k, v in os.environ.items() if k != "XMPP_CONNECT_TOKEN"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.1)
        script = first_request().replace("127.0.0.1:8750", f"127.0.0.1:{port}")
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assessment = json.JSONDecoder().raw_decode(done.stdout)[0]
        assert assessment["xmpp_message_id"].startswith("xmppmsg_")
        assert assessment["category"] in ("undef", "success")
    finally:
        process.terminate()
        process.wait(timeout=15)
