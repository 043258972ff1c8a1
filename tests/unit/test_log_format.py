"""node/logs.py: the JSON and text formats, and the one place that sets logging up."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from provledger.node.logs import FIELDS, JsonFormatter, TextFormatter, configure_logging
from provledger.node.rest.access_log import NO_MEMBER, access_fields


def record(
    message: str = "committed block %d", *args: object, **extra: object
) -> logging.LogRecord:
    made = logging.LogRecord("provledger.consensus", logging.INFO, __file__, 1, message, args, None)
    made.created = 1_764_695_367.25  # 2025-12-02T17:09:27.250Z
    made.msecs = 250.0
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_a_json_line_has_time_level_logger_message_and_the_fields_carried() -> None:
    line = JsonFormatter().format(record("committed block %d", 12, height=12, round=0))
    assert json.loads(line) == {
        "time": "2025-12-02T17:09:27.250Z",
        "level": "INFO",
        "logger": "provledger.consensus",
        "message": "committed block 12",
        "height": 12,
        "round": 0,
    }


def test_a_json_line_stays_one_line_and_takes_only_the_known_fields() -> None:
    line = JsonFormatter().format(record('two\nlines "quoted"', peer="node-1", secret="x"))
    assert "\n" not in line
    document = json.loads(line)
    assert document["message"] == 'two\nlines "quoted"'
    assert document["peer"] == "node-1"
    assert "secret" not in document


def test_a_json_line_carries_a_traceback_as_one_field() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exception"]


def test_the_text_format_writes_the_fields_after_the_message() -> None:
    line = TextFormatter().format(record("caught up block %d", 7, height=7, peer="node-2"))
    assert line.endswith("INFO provledger.consensus: caught up block 7 height=7 peer=node-2")


def test_every_field_is_written_in_its_order() -> None:
    values = {name: f"v-{name}" for name in FIELDS}
    document = json.loads(JsonFormatter().format(record("m", **values)))
    assert list(document)[4:] == list(FIELDS)


def test_configure_logging_replaces_the_handlers_and_refuses_an_unknown_format() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        stream = io.StringIO()
        configure_logging("json", stream=stream)
        configure_logging("json", stream=stream)  # twice: still one handler
        assert len(root.handlers) == 1
        logging.getLogger("provledger.test").info("hello", extra={"height": 3})
        logging.getLogger("uvicorn.error").warning("from uvicorn")
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [(d["logger"], d["message"]) for d in lines] == [
            ("provledger.test", "hello"),
            ("uvicorn.error", "from uvicorn"),
        ]
        assert lines[0]["height"] == 3
        with pytest.raises(ValueError, match="unknown log format 'xml'"):
            configure_logging("xml")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


def test_the_access_fields_name_the_member_or_a_dash_and_never_the_query() -> None:
    scope = {
        "method": "GET",
        "path": "/v1/assets/a-1",
        "query_string": b"token=secret",
        "headers": [(b"authorization", b"Bearer secret")],
        "state": {"access_log_member": "auditor"},
    }
    fields = access_fields(scope, 200, 0.01234)
    assert fields == {
        "method": "GET",
        "path": "/v1/assets/a-1",
        "status": 200,
        "duration_ms": 12.3,
        "member": "auditor",
    }
    assert "secret" not in json.dumps(fields)
    assert access_fields({"method": "GET", "path": "/v1/health"}, 200, 0)["member"] == NO_MEMBER
