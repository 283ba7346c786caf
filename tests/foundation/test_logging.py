"""Logging: JSON in production, request ids bound, credentials in URLs redacted."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.log import configure_logging, get_logger, redact
from app.models import Role
from tests.factories import app_sessions, bearer, make_user


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


def test_redaction_covers_secret_keys_hashes_tokens_and_sql_parameters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    jwt_token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    api_key = "ntm_0123456789ab_c2VjcmV0LXNlY3JldC1zZWNyZXQ"
    configure_logging("INFO", "json")
    try:
        log = get_logger("test")
        log.warning("login", password="hunter2", key_hash="ab" * 32, user={"token": jwt_token})
        log.warning("odd_text", text=f"hash={password_hash} bearer {jwt_token} key {api_key}")
        log.warning("db", error="(x) boom\n[SQL: INSERT ...]\n[parameters: ('a@b.c', 'secret')]")
        logging.getLogger("third.party").warning("stdlib %s", password_hash)
        out = capsys.readouterr().err
    finally:
        configure_logging("WARNING", "console")
    for secret in ("hunter2", "ab" * 32, jwt_token, password_hash, api_key, "'secret'"):
        assert secret not in out
    lines = {line["event"]: line for line in map(json.loads, out.splitlines())}
    assert lines["login"]["password"] == "[redacted]"
    assert lines["login"]["user"] == {"token": "[redacted]"}
    assert lines["odd_text"]["text"] == "hash=[redacted] bearer [redacted] key [redacted]"
    assert "[parameters: [redacted]]" in lines["db"]["error"]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_show_no_local_variables(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    configure_logging("INFO", fmt)
    try:
        try:
            plaintext = "local-secret-value"  # a local a rich or dict traceback would print
            raise RuntimeError(f"failed for {len(plaintext)} chars")
        except RuntimeError:
            get_logger("test").exception("unhandled_error")
        out = capsys.readouterr().err
    finally:
        configure_logging("WARNING", "console")
    assert "failed for 18 chars" in out
    assert "local-secret-value" not in out


async def test_a_database_error_creating_a_user_logs_no_hash_or_password(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    backend: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unexpected database error (not a duplicate email) on ``INSERT INTO users``."""
    admin = await make_user(app_sessions(app), role=Role.ADMIN)
    async with sessions() as session:
        if backend == "sqlite":  # the trigger's table is gone when the trigger runs
            for statement in (
                "CREATE TABLE doomed (x INTEGER)",
                "CREATE TRIGGER users_fail BEFORE INSERT ON users "
                "BEGIN INSERT INTO doomed VALUES (1); END",
                "DROP TABLE doomed",
            ):
                await session.execute(text(statement))
        else:
            await session.execute(
                text(
                    "CREATE FUNCTION users_fail() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'forced failure'; END $$"
                )
            )
            await session.execute(
                text(
                    "CREATE TRIGGER users_fail BEFORE INSERT ON users "
                    "FOR EACH ROW EXECUTE FUNCTION users_fail()"
                )
            )
        await session.commit()
    password = "Plain-text-Passw0rd"
    outputs = []
    try:
        for fmt in ("json", "console"):
            configure_logging("INFO", fmt)
            response = await client.post(
                "/api/v1/users",
                json={"email": f"{fmt}@example.com", "password": password},
                headers=bearer(settings, admin),
            )
            assert response.status_code == 500, response.text
            assert response.json()["code"] == "internal_error"
            outputs.append(capsys.readouterr().err)
    finally:
        configure_logging("WARNING", "console")
        async with sessions() as session:
            await session.execute(
                text("DROP TRIGGER users_fail" + ("" if backend == "sqlite" else " ON users"))
            )
            if backend != "sqlite":
                await session.execute(text("DROP FUNCTION users_fail()"))
            await session.commit()
    for out in outputs:
        assert "unhandled_error" in out  # the error was logged, with its traceback
        assert "Traceback" in out or '"exc_type"' in out
        assert "$argon2" not in out
        assert password not in out
