"""`xmpp-connect config check FILE` and `config show FILE`: the service config validated as `serve` reads it,
and the effective config with every default filled in and every secret masked."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from xmpp_connect.config.loader import load_config
from xmpp_connect.config.settings import Secret, ServiceConfig

MASK = "********"


def add_commands(subparsers: Any) -> None:
    config = subparsers.add_parser("config", help="check a service config file, or show its effective values")
    actions = config.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate FILE; file:line and the field for every problem")
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(handler=_check)
    show = actions.add_parser("show", help="FILE with every default filled in, secrets masked")
    show.add_argument("file", type=Path, metavar="FILE")
    show.set_defaults(handler=_show)


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    kinds = sorted({a.provider for a in config.accounts})
    print(f"{args.file}: OK: {len(config.accounts)} account(s) ({', '.join(kinds)}), "
          f"{len(config.tenants)} tenant(s), {config.storage.kind} storage, listening on "
          f"{config.host}:{config.port}")
    return 0


def _show(args: argparse.Namespace) -> int:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.dump(effective(load_config(args.file)), sys.stdout)
    return 0


def effective(config: ServiceConfig) -> dict[str, Any]:
    """The config in the file's shape (``listen: {host, port}``), defaults included, secrets masked."""
    values = {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}
    listen = {"host": values.pop("host"), "port": values.pop("port")}
    return {"listen": listen, **values}


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value
