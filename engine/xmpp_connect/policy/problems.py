"""A problem found in the policy tables, located by file and line, and the error that carries them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One finding; `line` is 1-based, None when the whole file is concerned (e.g. missing)."""

    file: str
    line: int | None
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"


class PolicyError(Exception):
    """The tables are not a valid policy; `problems` lists every error (and warning) found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.messages: tuple[str, ...] = tuple(str(p) for p in self.problems)
        errors = sum(1 for p in self.problems if p.severity == "error")
        super().__init__(f"{errors} policy error(s):\n" + "\n".join(self.messages))
