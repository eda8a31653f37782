"""Message templates: ``template_ref`` + ``variables`` -> body text. A failure is a result, never raised."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

TEMPLATE_REF = re.compile(r"^[a-z0-9][a-z0-9._-]{0,199}$")

BUILTIN_TEMPLATES: dict[str, str] = {
    "secure-document-xmpp-notification": "A document is available for you: ${portal_link}",
    "incident-ack-request": "Incident ${incident_id}: ${summary}. Reply ACK to confirm.",
    "reminder": "Reminder: ${summary}",
}


@dataclass(frozen=True)
class Rendered:
    """The outcome of rendering: ``body`` when it worked, ``error`` (no variable values) when not."""

    body: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class TemplateStore:
    """Built-in templates, overridden by ``<ref>.txt`` files in an optional directory."""

    def __init__(
        self, directory: Path | None = None, builtins: Mapping[str, str] = BUILTIN_TEMPLATES
    ) -> None:
        self.directory = directory
        self.builtins = dict(builtins)

    def source(self, ref: str) -> str | None:
        if not TEMPLATE_REF.match(ref):
            return None
        if self.directory is not None:
            path = self.directory / f"{ref}.txt"
            if path.is_file():
                return path.read_text(encoding="utf-8")
        return self.builtins.get(ref)

    def render(self, ref: str, variables: Mapping[str, object]) -> Rendered:
        """Substitute ``${name}`` placeholders; unknown templates and missing variables are failures."""
        source = self.source(ref)
        if source is None:
            return Rendered(
                None, f"unknown template {ref!r}" if TEMPLATE_REF.match(ref) else "invalid template ref"
            )
        values = {k: "" if v is None else str(v) for k, v in variables.items()}
        try:
            body = Template(source).substitute(values)
        except KeyError as exc:
            return Rendered(None, f"template {ref!r} needs variable {exc.args[0]!r}")
        except ValueError:
            return Rendered(None, f"template {ref!r} has an invalid placeholder")
        if not body.strip():
            return Rendered(None, f"template {ref!r} rendered an empty body")
        return Rendered(body)
