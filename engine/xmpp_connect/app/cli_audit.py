"""`xmpp-connect audit verify | checkpoint | keygen | anonymize` and `xmpp-connect export` (spec/audit.md)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from xmpp_connect.config.loader import default_config, load_config
from xmpp_connect.config.settings import ConfigError, ServiceConfig
from xmpp_connect.evidence.exports import ExportError, ExportRequest, build_export
from xmpp_connect.model.bundle import verify_bundle
from xmpp_connect.model.checkpoint import (
    SigningKeyError,
    generate_private_key_pem,
    load_private_key,
    load_public_key,
)
from xmpp_connect.policy.load import load_policy
from xmpp_connect.store.audit import AuditReport
from xmpp_connect.store.sql import SqlStore
from xmpp_connect.store.timestamps import utc_now

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def add_commands(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="verify the evidence chain, sign checkpoints, make keys")
    actions = audit.add_subparsers(dest="action", required=True)

    verify = actions.add_parser("verify", help="check the whole chain and every checkpoint, or one bundle")
    _service_options(verify)
    verify.add_argument("--tenant", help="only this tenant (default: every tenant in the store)")
    verify.add_argument("--bundle", type=Path, metavar="FILE", help="verify an export bundle offline")
    verify.add_argument("--public-key", type=Path, metavar="FILE",
                        help="the adapter's public key (base64 or PEM); default: the config's signing key's"
                        " (for --bundle: the copy inside the bundle)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=_verify)

    checkpoint = actions.add_parser("checkpoint", help="sign every tenant's chain head now")
    _service_options(checkpoint)
    checkpoint.add_argument("--tenant", help="only this tenant")
    checkpoint.set_defaults(handler=_checkpoint)

    keygen = actions.add_parser("keygen", help="print a new Ed25519 signing key (PEM) for audit.signing_key")
    keygen.set_defaults(handler=_keygen)

    anonymize = actions.add_parser("anonymize", help="anonymize a participant's evidence (§28)")
    _service_options(anonymize)
    anonymize.add_argument("--tenant", required=True)
    anonymize.add_argument("--participant", required=True)
    anonymize.set_defaults(handler=_anonymize)

    export = subparsers.add_parser("export", help="an evidence bundle: case, participant, message or time")
    _service_options(export)
    export.add_argument("--tenant", required=True)
    export.add_argument("--case", dest="case_id")
    export.add_argument("--participant", dest="participant_id")
    export.add_argument("--message", dest="message_id")
    export.add_argument("--since", type=datetime.fromisoformat, help="ISO 8601, on the events' occurred_at")
    export.add_argument("--until", type=datetime.fromisoformat, help="ISO 8601, exclusive")
    export.add_argument("--all", action="store_true", help="the tenant's whole log (no selection)")
    export.add_argument("--anonymize", action="store_true", help="pseudonyms for JIDs and participant ids")
    export.add_argument("--no-bodies", action="store_true", help="leave message text and raw content out")
    export.add_argument("--raw", choices=("refs", "content", "unredacted"), default="refs",
                        help="raw stanzas: references only (default), content as stored (redacted), or"
                        " content stored unredacted as it is")
    export.add_argument("--output", type=Path, metavar="FILE", help="write here instead of stdout")
    export.set_defaults(handler=_export)


def _service_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="service config (YAML); default: the embedded sandbox")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="data directory of the default")


def _config(args: argparse.Namespace) -> ServiceConfig:
    return load_config(args.config) if args.config else default_config(args.data_dir)


def _store(config: ServiceConfig) -> SqlStore:
    from xmpp_connect.app.server import open_store

    return open_store(config)


def signing_key(config: ServiceConfig) -> Ed25519PrivateKey | None:
    secret = config.audit.signing_key
    return None if secret is None else load_private_key(secret.reveal())


def _fail(message: str) -> int:
    print(f"xmpp-connect: {message}", file=sys.stderr)
    return EXIT_USAGE


def _verify(args: argparse.Namespace) -> int:
    given = args.public_key.read_text(encoding="utf-8") if args.public_key else None
    if args.bundle is not None:
        return _verify_bundle(args.bundle, given, args.json)
    try:
        config = _config(args)
        key = signing_key(config)
        public = load_public_key(given) if given else key.public_key() if key else None
    except (ConfigError, SigningKeyError) as exc:
        return _fail(str(exc))
    store = _store(config)
    try:
        tenants = [args.tenant] if args.tenant else store.chain_tenants()
        reports = [store.verify_chain(tenant, public) for tenant in tenants]
    finally:
        store.close()
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        for report in reports:
            print(_report_line(report))
    return EXIT_OK if all(r.ok for r in reports) else EXIT_FINDINGS


def _report_line(report: AuditReport) -> str:
    failure = report.failure
    state = (
        "verifies"
        if failure is None
        else f"FIRST FAILURE: entry {failure.event_id} {failure.kind} (seq {failure.seq}): {failure.detail}"
    )
    signatures = "checked" if report.signatures_checked else "NOT checked: no key"
    return (
        f"tenant {report.tenant_id}: {report.entries} entries, {report.checkpoints} checkpoints"
        f" (signatures {signatures}), {report.anonymized} anonymized,"
        f" raw {report.raw_checked} checked / {report.raw_purged} purged: {state}"
    )


def _verify_bundle(path: Path, public_key: str | None, as_json: bool) -> int:
    report = verify_bundle(path.read_text(encoding="utf-8"), public_key)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for note in report.notes:
            print(f"note: {note}")
        verdict = "verifies" if report.ok else f"REFUSED: {report.problem}"
        print(
            f"bundle {path}: {report.entries} entries, {report.links} linked hashes,"
            f" checkpoint {report.checkpoint_id}: {verdict}"
        )
    return EXIT_OK if report.ok else EXIT_FINDINGS


def _checkpoint(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        key = signing_key(config)
    except (ConfigError, SigningKeyError) as exc:
        return _fail(str(exc))
    if key is None:
        return _fail("audit.signing_key_env or audit.signing_key_file is not configured")
    store = _store(config)
    try:
        for tenant in [args.tenant] if args.tenant else store.chain_tenants():
            checkpoint = store.create_checkpoint(tenant, key, utc_now())
            print(json.dumps(checkpoint.to_dict()))
    finally:
        store.close()
    return EXIT_OK


def _keygen(_args: argparse.Namespace) -> int:
    print(generate_private_key_pem(), end="")
    return EXIT_OK


def _anonymize(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ConfigError as exc:
        return _fail(str(exc))
    store = _store(config)
    try:
        count = store.anonymize_participant(args.tenant, args.participant)
    finally:
        store.close()
    print(f"{count} entries anonymized")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
        key = signing_key(config)
    except (ConfigError, SigningKeyError) as exc:
        return _fail(str(exc))
    request = ExportRequest(
        tenant_id=args.tenant,
        case_id=args.case_id,
        participant_id=args.participant_id,
        message_id=args.message_id,
        since=args.since,
        until=args.until,
        anonymize=args.anonymize,
        bodies=not args.no_bodies,
        raw_content=args.raw != "refs",
        unredacted=args.raw == "unredacted",
    )
    if not request.selection() and not args.all:
        return _fail("choose --case-id, --participant-id, --message-id, --since/--until, or --all")
    store = _store(config)
    try:
        text = build_export(store, request, now=utc_now(), key=key, policy=load_policy(config.policy_dir))
    except ExportError as exc:
        return _fail(str(exc))
    finally:
        store.close()
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK
