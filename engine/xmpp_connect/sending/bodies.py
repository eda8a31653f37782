"""The text a send carries: content, a rendered template, a command prompt or an Atom entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from xmpp_connect.sending.templates import TemplateStore

ATOM_NS = "http://www.w3.org/2005/Atom"


def render_body(
    templates: TemplateStore, action_type: str, request: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """The message text and, when rendering failed, why."""
    if action_type == "interaction.send_command_prompt":
        keywords = " / ".join(request["expected_keywords"])
        return f"{request['prompt']}\n\nReply: {keywords}", None
    if action_type == "feed.publish_item":
        return atom_entry(request["item"]), None
    content = request.get("content")
    if content is not None:
        body, error = content["body"], None
    else:
        rendered = templates.render(request["template_ref"], request.get("variables") or {})
        body, error = rendered.body, rendered.error
    if action_type == "interaction.request_acknowledgement" and body is not None:
        keywords = " / ".join(request.get("expected_keywords") or ["ACK"])
        body = f"{body}\n\nReply {keywords} to acknowledge."
    return body, error


def atom_entry(item: Mapping[str, Any]) -> str:
    """A feed.publish_item item as the Atom entry published to the node (XEP-0060 §7.1 payload)."""
    parts = [f"<entry xmlns='{ATOM_NS}'><title>{escape(item['title'])}</title>"]
    if item.get("summary"):
        parts.append(f"<summary>{escape(item['summary'])}</summary>")
    if item.get("link"):
        parts.append(f"<link href={quoteattr(item['link'])}/>")
    parts.append("</entry>")
    return "".join(parts)
