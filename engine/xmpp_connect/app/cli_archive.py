"""`xmpp-connect archive query`: ask the running service to reconstruct from its account's XEP-0313 archive
(the XMPP session lives in the service, so this is a client of ``POST /adapter/archive/queries``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_URL = "http://127.0.0.1:8750"
TOKEN_ENV = "XMPP_CONNECT_TOKEN"


def add_commands(subparsers: Any) -> None:
    archive = subparsers.add_parser("archive", help="reconstruct from the account's message archive (§7.7)")
    actions = archive.add_subparsers(dest="action", required=True)
    query = actions.add_parser(
        "query", help="query the archive for a message or from a time; print the result"
    )
    target = query.add_mutually_exclusive_group(required=True)
    target.add_argument("--message", help="an xmpp_message_id: its conversation since it was created")
    target.add_argument("--since", help="ISO 8601 with offset: everything archived since then")
    query.add_argument("--with", dest="with_jid", help="with --since: only this JID's conversation")
    query.add_argument("--account", help="with --since: the account whose archive (default: the first)")
    query.add_argument("--url", default=DEFAULT_URL, help="the service (default: %(default)s)")
    query.add_argument("--token-file", type=Path, help=f"the tenant's bearer token (default: ${TOKEN_ENV})")
    query.set_defaults(handler=_query)


def _query(args: argparse.Namespace) -> int:
    token = (
        args.token_file.read_text(encoding="utf-8").strip() if args.token_file else os.environ.get(TOKEN_ENV)
    )
    if not token:
        print(f"xmpp-connect: a bearer token is required (--token-file or ${TOKEN_ENV})", file=sys.stderr)
        return EXIT_USAGE
    body: dict[str, Any] = {"xmpp_message_id": args.message} if args.message else {"since": args.since}
    if args.with_jid:
        body["with"] = args.with_jid
    if args.account:
        body["account_ref"] = args.account
    try:
        response = httpx.post(
            args.url.rstrip("/") + "/adapter/archive/queries",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
    except httpx.HTTPError as exc:
        print(
            f"xmpp-connect: the service at {args.url} did not answer ({type(exc).__name__})", file=sys.stderr
        )
        return EXIT_FAILED
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(f"xmpp-connect: HTTP {response.status_code} without a JSON body", file=sys.stderr)
    return EXIT_OK if response.status_code == 200 else EXIT_FAILED
