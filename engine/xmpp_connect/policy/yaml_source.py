"""Read a policy YAML file keeping line numbers, and find the line of any node by its path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from xmpp_connect.policy.problems import Problem


@dataclass(frozen=True)
class YamlDocument:
    """One parsed table file: `node` is the ruamel tree (with line info), `data` the same as plain Python."""

    relpath: str
    node: Any
    data: Any

    def line(self, path: Sequence[str | int] = ()) -> int:
        return line_of(self.node, path)

    def problem(self, path: Sequence[str | int], message: str, severity: str = "error") -> Problem:
        return Problem(self.relpath, self.line(path), message, severity)


def read_yaml(path: Path, relpath: str) -> YamlDocument | Problem:
    """Parse one file; a syntax error (or duplicate key) comes back as a located Problem."""
    try:
        node = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        return _syntax_problem(relpath, exc)
    except (YAMLError, UnicodeDecodeError) as exc:
        return Problem(relpath, None, f"YAML: {exc}")
    return YamlDocument(relpath, node, to_plain(node))


def _syntax_problem(relpath: str, exc: MarkedYAMLError) -> Problem:
    """Locate a YAML error; an unclosed flow collection is reported where it opened, not where it broke."""
    unclosed = (exc.context or "").startswith("while parsing a flow") and exc.context_mark is not None
    mark = exc.context_mark if unclosed else (exc.problem_mark or exc.context_mark)
    line = mark.line + 1 if mark is not None else None
    message = f"YAML: {exc.problem or exc.context}"
    if unclosed and exc.problem_mark is not None:
        message += f" ({exc.context} opened here, broken at line {exc.problem_mark.line + 1})"
    return Problem(relpath, line, message)


def to_plain(node: Any) -> Any:
    """ruamel containers and scalar subclasses -> dict, list, str, bool, int, float, None."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def line_of(node: Any, path: Sequence[str | int]) -> int:
    """1-based line of the node at `path`: a scalar's own line, a container's key line."""
    line = node.lc.line + 1 if isinstance(node, CommentedMap | CommentedSeq) else 1
    current = node
    for step in path:
        if isinstance(current, CommentedMap) and step in current:
            child = current[step]
            key_line, _ = current.lc.key(step)
            value_line, _ = current.lc.value(step)
            line = (key_line if isinstance(child, CommentedMap | CommentedSeq) else value_line) + 1
        elif isinstance(current, CommentedSeq) and isinstance(step, int) and 0 <= step < len(current):
            child = current[step]
            line = current.lc.item(step)[0] + 1
        else:
            break
        current = child
    return line
