"""The `xmpp-connect` command: `serve`, `config`, `rules` (app/cli_rules.py), `audit`, `export`, `archive`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from xmpp_connect import __version__
from xmpp_connect.app import cli_archive, cli_audit, cli_config
from xmpp_connect.app.cli_rules import EXIT_FINDINGS
from xmpp_connect.app.cli_rules import add_commands as add_rules_commands
from xmpp_connect.config.settings import ConfigError
from xmpp_connect.policy.problems import PolicyError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xmpp-connect", description=__doc__)
    parser.add_argument("--version", action="version", version=f"xmpp-connect {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback for a config error")
    commands = parser.add_subparsers(dest="command", required=True)
    add_rules_commands(commands)

    serve = commands.add_parser("serve", help="run the HTTP service (default: SQLite + sandbox provider)")
    serve.add_argument("--config", type=Path, help="service config (YAML); default: the embedded sandbox")
    serve.add_argument("--data-dir", type=Path, default=Path("data"), help="data directory of the default")
    serve.add_argument("--host", help="listen address (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from config: 8750)")
    serve.add_argument("--api-workers", type=int, default=0, metavar="N",
                       help="N worker processes serve HTTP and accept plain sends; this process keeps the"
                       " XMPP sessions and the store (default 0: one process does everything)")
    serve.add_argument("--log-format", choices=("text", "json"),
                       help="text (default) or json: one object per line (overrides the config's logging)")
    serve.set_defaults(handler=_serve)
    cli_config.add_commands(commands)
    cli_audit.add_commands(commands)
    cli_archive.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except PolicyError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        return EXIT_FINDINGS
    except ConfigError as exc:
        if args.debug:
            raise
        for message in exc.messages:
            print(message, file=sys.stderr)
        return EXIT_FINDINGS


def _serve(args: argparse.Namespace) -> int:
    from xmpp_connect.app.server import run

    run(args.config, args.data_dir, args.host, args.port, args.api_workers, args.log_format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
