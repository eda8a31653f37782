"""Log output: readable text (the default) or one JSON object per line (``--log-format json``).

Every line written while a request is served carries its request id; ``key=value`` ids in a message
(message, attempt, event, operation, account, tenant, subscription) become fields of the JSON object. The
service never logs bodies, tokens, passwords or secrets; an exception is logged by type and frames only,
since its message may quote input."""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

from xmpp_connect.model.request_context import REQUEST_ID

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
ID_FIELDS = re.compile(
    r"\b(message_id|attempt_id|event_id|operation_id|account|tenant|subscription)=([^\s,()]+)"
)
STRUCTURED_EXTRAS = ("http",)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            out["request_id"] = request_id
        for key, value in ID_FIELDS.findall(message):
            if value != "None":
                out.setdefault(key, value)
        for key in STRUCTURED_EXTRAS:
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = record.exc_info[0].__name__
            out["frames"] = "".join(traceback.format_tb(record.exc_info[2]))
        return json.dumps(out, default=str, separators=(",", ":"))


def setup_logging(log_format: str = "text", level: int = logging.INFO, stream: Any = None) -> None:
    """Route every logger (uvicorn's too, run with ``log_config=None``) to one stderr handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for chatty in ("httpx", "httpcore"):  # a line per webhook or forwarded request, with its URL
        logging.getLogger(chatty).setLevel(logging.WARNING)
