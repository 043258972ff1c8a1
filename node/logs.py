"""The node's logs: one place that sets them up, as text (the default) or as JSON lines.

`provledger node run --log-format json` writes one JSON object per line, for a log shipper:

    {"time": "2026-12-02T17:09:27.123Z", "level": "INFO", "logger": "provledger.consensus",
     "message": "committed block 12 with 3 events", "height": 12}

`time` is UTC with milliseconds; `level`, `logger` and `message` are always there; `height`,
`round`, `peer`, and the access log's `method`, `path`, `status`, `duration_ms` and `member`
are there when the log call carries them (`log.info(..., extra={"height": 12})`); `exception`
holds a traceback. The text format writes the same fields after the message as `key=value`.

Only the fields in `FIELDS` are taken from a call's `extra`, so nothing else a library puts on
a record (or a careless call) reaches the log by accident.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

LOG_FORMATS = ("text", "json")
# The structured fields a log call may carry in `extra`, in the order they are written.
FIELDS = ("height", "round", "peer", "method", "path", "status", "duration_ms", "member")


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields `record` carries (see FIELDS), in FIELDS order."""
    return {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}


def _utc_time(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a message's newlines are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _utc_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(record_fields(record))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...`, the fields as in JsonFormatter."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = record_fields(record)
        return line + "".join(f" {name}={value}" for name, value in fields.items())


def configure_logging(
    log_format: str = "text", level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record at `level` or above to `stream` (stderr) in `log_format`,
    replacing the root logger's handlers; return the handler. ValueError for an unknown
    format. uvicorn's own loggers and Python's warnings are routed here too, so they are
    written alike."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}: one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python's warnings too, on the logger py.warnings
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    return handler
