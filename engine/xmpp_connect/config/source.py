"""A config file read with its line numbers: YAML syntax errors name file:line:column, and any problem with
a field path can be placed at the line that holds it."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from xmpp_connect.config.schema import FieldPath, parse_field


class SourceError(ValueError):
    """The file cannot be read or is not YAML; the message names file:line."""


@dataclass(frozen=True)
class ConfigSource:
    """The parsed file as plain data, and the document it came from (for line numbers)."""

    path: Path
    data: Any
    document: Any

    def line_of(self, path: FieldPath) -> int | None:
        """The 1-based line of the deepest part of ``path`` in the file (for a missing key: its parent)."""
        node, line = self.document, None
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line = node.lc.item(part)[0] + 1
            else:
                break
            node = node[part]
        return line

    def locate_all(self, messages: Sequence[str]) -> list[str]:
        """Each message that starts with a field path as ``file:line: message`` (else ``file: message``),
        in the order of their lines in the file."""
        placed = sorted(((self.line_of(parse_field(m)), m) for m in messages), key=lambda p: p[0] or 0)
        return [f"{self.path}:{line}: {m}" if line else f"{self.path}: {m}" for line, m in placed]


def read_source(path: Path) -> ConfigSource:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the config file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise SourceError(f"{path}: not UTF-8 text") from None
    try:
        document = YAML(typ="rt", pure=True).load(text)
    except YAMLError as exc:
        raise SourceError(_yaml_error(path, exc)) from None
    return ConfigSource(path, _plain(document), document)


def _yaml_error(path: Path, exc: YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    context = getattr(exc, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def _plain(node: Any) -> Any:
    """ruamel's round-trip types as plain Python values (a ScalarFloat is a float, a date a string)."""
    if isinstance(node, Mapping):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime.date):
        return node.isoformat()
    return str(node)
