"""The evidence console's HTML, rendered on the server: no script, no CDN, every value escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.7rem 1.4rem;display:flex;justify-content:space-between;
align-items:center}header a{color:#fff}main{padding:1rem 1.4rem;max-width:72rem}
h1{font-size:1.15rem;margin:0}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #e3e6eb;
padding:.35rem .5rem;text-align:left;vertical-align:top}th{font-weight:600;font-size:.85rem;color:#5b6475}
.success{color:#17663a}.fail{color:#a12020}.undef{color:#8a5a00}code{font-size:.85rem}
ol.ladder{list-style:none;margin:0;padding:0 0 0 1.2rem;border-left:3px solid #c9ced8}
ol.ladder li{position:relative;margin:0 0 .9rem;padding:.5rem .8rem;background:#fff;border:1px solid #e3e6eb;
border-radius:6px}ol.ladder li::before{content:"";position:absolute;left:-1.75rem;top:.8rem;width:.8rem;
height:.8rem;border-radius:50%;background:#c9ced8}ol.ladder li.strength-strong::before{background:#17663a}
ol.ladder li.strength-medium::before{background:#4f7bd0}ol.ladder li.strength-weak::before{background:#d3a01f}
.badge{display:inline-block;font-size:.75rem;padding:0 .4rem;border-radius:3px;background:#e9ecf1;
margin-right:.3rem}.badge.late{background:#f8e1c0}.badge.inferred{background:#e2dcf5}
form.signin{background:#fff;padding:1.2rem;border:1px solid #e3e6eb;max-width:26rem}
input[type=password]{width:100%;padding:.4rem;margin:.4rem 0 .8rem;box-sizing:border-box}
pre{background:#fff;border:1px solid #e3e6eb;padding:.8rem;overflow:auto}.error{color:#a12020}
"""


def page(title: str, body: str, tenant_id: str | None = None) -> str:
    signed_in = (
        f'<form method="post" action="/console/sign-out"><span>tenant {escape(tenant_id)}</span> '
        '<button type="submit">Sign out</button></form>'
        if tenant_id is not None else ""
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · xmpp-connect'
        f"</title><style>{STYLE}</style></head><body><header><h1><a href=\"/console\">xmpp-connect evidence "
        f"console</a></h1>{signed_in}</header><main>{body}</main></body></html>"
    )


def sign_in(error: str | None = None) -> str:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return page("Sign in", (
        '<form class="signin" method="post" action="/console/sign-in"><h2>Sign in</h2>'
        "<p>Paste your tenant's bearer token. The console keeps it only as an HttpOnly session cookie.</p>"
        f'{message}<label for="token">Bearer token</label>'
        '<input id="token" name="token" type="password" autocomplete="off" required>'
        '<button type="submit">Sign in</button></form>'
    ))


def overview(tenant_id: str, messages: Sequence[Mapping[str, Any]], health: Sequence[Mapping[str, Any]],
             dead_letters: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f'<tr><td><a href="/console/messages/{quote(m["xmpp_message_id"])}">'
        f'<code>{escape(m["xmpp_message_id"])}</code></a></td><td>{escape(m["created_at"][:19])}</td>'
        f'<td>{escape(m.get("to") or "")}</td>{_assessment_cells(m["assessment"])}</tr>'
        for m in messages
    ) or '<tr><td colspan="5">No messages yet.</td></tr>'
    accounts = "".join(
        f'<tr><td>{escape(a["xmpp_account_ref"])}</td><td>{escape(a["status"])}</td>'
        f'<td>{escape(_connection(a))}</td><td>{escape(a["tls_status"])}</td>'
        f'<td>{escape(", ".join(a.get("known_degradations") or ()) or "-")}</td></tr>'
        for a in health
    )
    letters = "".join(
        f'<tr><td>{escape(str(d.get("created_at", ""))[:19])}</td><td>{escape(str(d.get("stage")))}</td>'
        f'<td>{escape(str(d.get("reason")))}</td>{_raw_cell(d.get("raw_event_ref"))}</tr>'
        for d in dead_letters
    ) or '<tr><td colspan="4">None.</td></tr>'
    return page("Messages", (
        '<h2>Recent messages</h2><table id="messages"><tr><th>message</th><th>created (UTC)</th><th>to</th>'
        f"<th>assessment</th><th>confidence</th></tr>{rows}</table>"
        '<h2>Channel health</h2><table id="health"><tr><th>account</th><th>status</th><th>connection</th>'
        f"<th>TLS</th><th>degradations</th></tr>{accounts}</table>"
        '<h2>Dead letters</h2><table id="dead-letters"><tr><th>when (UTC)</th><th>stage</th><th>reason</th>'
        f"<th>raw</th></tr>{letters}</table>"
    ), tenant_id)


def message_page(tenant_id: str, message_id: str, entries: Sequence[Mapping[str, Any]],
                 assessment: Mapping[str, Any], strengths: Mapping[str, str]) -> str:
    start = _time(entries[0]["occurred_at"]) if entries else None
    rungs = "".join(_rung(entry, start, strengths) for entry in entries)
    return page(message_id, (
        f"<h2>Message <code>{escape(message_id)}</code></h2>"
        f'<p id="assessment" class="{escape(assessment["category"])}">Assessment: '
        f'<strong>{escape(assessment["subclass"])}</strong> (confidence {escape(assessment["confidence"])})'
        f"</p><p>Each rung is evidence, not result satisfaction: a server ack is not delivery, a receipt is "
        f'not reading.</p><ol class="ladder" id="ladder">{rungs}</ol>'
    ), tenant_id)


def raw_page(tenant_id: str, raw: Mapping[str, Any]) -> str:
    reference = raw["reference"]
    state = "redacted" if reference.get("redacted") else "not redacted"
    content = raw["content"]
    shown = f"<pre>{escape(content)}</pre>" if content is not None else "<p>Purged by retention.</p>"
    return page("Raw stanza", (
        f'<h2>Raw stanza <code>{escape(raw["raw_event_ref"])}</code></h2>'
        f'<p>{escape(str(reference.get("source")))}, received {escape(str(reference.get("received_at")))}, '
        f"{state}.</p>{shown}"
    ), tenant_id)


def _rung(entry: Mapping[str, Any], start: datetime | None, strengths: Mapping[str, str]) -> str:
    grade = entry.get("evidence_grade")
    strength = strengths.get(grade, "none") if grade else "none"
    offset = (_time(entry["occurred_at"]) - start).total_seconds() * 1000 if start else 0.0
    sender = entry.get("sender") or {}
    badges = "".join(
        f'<span class="badge {name}">{name}</span>' for name in ("late", "inferred") if entry.get(name)
    )
    subclass = entry["assessment"]["subclass"]
    category = subclass.split(".", 1)[0]
    return (
        f'<li class="rung strength-{escape(strength)}" data-event="{escape(entry["event_type"])}" '
        f'data-subclass="{escape(subclass)}" data-strength="{escape(strength)}">'
        f'<div><strong>{escape(entry["event_type"])}</strong> +{offset:.0f} ms {badges}</div>'
        f'<div class="{escape(category)}">{escape(subclass)} · {escape(entry.get("scenario") or "-")}</div>'
        f"<div>grade {escape(grade or '-')} ({escape(strength)}) · resource "
        f'<span class="resource">{escape(sender.get("resource") or "-")}</span></div>'
        f"{_raw_link(entry.get('raw_event_ref'))}</li>"
    )


def _raw_link(ref: str | None) -> str:
    return f'<div><a href="/console/raw/{quote(ref)}">raw stanza</a></div>' if ref else ""


def _raw_cell(ref: str | None) -> str:
    return f'<td><a href="/console/raw/{quote(ref)}">raw</a></td>' if ref else "<td>-</td>"


def _assessment_cells(assessment: Mapping[str, Any]) -> str:
    category, subclass = escape(assessment["category"]), escape(assessment["subclass"])
    return f'<td class="{category}">{subclass}</td><td>{escape(assessment["confidence"])}</td>'


def _connection(account: Mapping[str, Any]) -> str:
    connection = account.get("connection") or {}
    reason = connection.get("reason")
    return f'{connection.get("status", "?")}{f" ({reason})" if reason else ""}'


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
