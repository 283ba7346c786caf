"""Logging: JSON in production, request ids bound, credentials in URLs redacted."""

from __future__ import annotations

import json
import logging

import pytest

from app.log import configure_logging, get_logger, redact


def test_redact_hides_tokens_in_query_strings() -> None:
    line = 'GET /api/v1/tasks/1/events?token=eyJabc.def&x=1 HTTP/1.1" 200'
    assert redact(line) == 'GET /api/v1/tasks/1/events?token=[redacted]&x=1 HTTP/1.1" 200'
    assert redact("/ws?a=1&token=ntm_ab_cd") == "/ws?a=1&token=[redacted]"


def test_json_lines_carry_context_and_redact_stdlib_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import structlog

    configure_logging("INFO", "json")
    try:
        with structlog.contextvars.bound_contextvars(task_id="t-1"):
            get_logger("test").info("task_claimed", attempt=2)
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1",
            "GET",
            "/api/v1/ws/tasks/c1?token=secret-token",
            "1.1",
            101,
        )
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        configure_logging("WARNING", "console")
    claimed = next(line for line in lines if line["event"] == "task_claimed")
    assert claimed["task_id"] == "t-1"
    assert claimed["attempt"] == 2
    assert claimed["level"] == "info"
    access = next(line for line in lines if line.get("logger") == "uvicorn.access")
    assert "secret-token" not in json.dumps(access)
    assert "token=[redacted]" in access["event"]
