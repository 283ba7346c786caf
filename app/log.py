"""structlog configured once: console in development, JSON in production.

stdlib and uvicorn records go through the same ``ProcessorFormatter``, so
every line has one format and carries the ``request_id`` / ``task_id`` /
``worker_id`` bound in contextvars. Secrets never reach a line: credentials
passed as ``?token=``, values under secret-bearing keys (``password``,
``password_hash``, ``key_hash``, ``token``, …), anything shaped like an
argon2 hash, a JWT or an API key, and the SQL parameters a database error
would print are all replaced by ``[redacted]``, in messages and in rendered
tracebacks alike. Tracebacks never show local variables.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
import structlog.tracebacks
from asgi_correlation_id import correlation_id

REDACTED = "[redacted]"
_TOKEN_IN_URL = re.compile(r"([?&](?:token|access_token|api_key)=)[^&\s\"']+", re.IGNORECASE)
# Values that are secrets whatever key they sit under.
_SECRET_VALUES = re.compile(
    r"\$argon2(?:id|i|d)\$[\w$=,+/.-]+"  # a password hash
    r"|\beyJ[\w-]+\.[\w-]+\.[\w-]+"  # a JWT
    r"|\bntm_[0-9a-f]+_[\w-]+"  # an API key (app.services.auth)
)
# SQLAlchemy's error text carries the statement's parameters on one line.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")
SECRET_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "hashed_password",
        "key_hash",
        "secret",
        "secret_key",
        "token",
        "access_token",
        "api_key",
        "authorization",
    }
)


def redact(text: str) -> str:
    """Hide credentials and secrets in free text (``?token=…`` → ``?token=[redacted]``)."""
    if "=" in text:
        text = _TOKEN_IN_URL.sub(r"\1" + REDACTED, text)
    if "$argon2" in text or "eyJ" in text or "ntm_" in text:
        text = _SECRET_VALUES.sub(REDACTED, text)
    if "[parameters: " in text:
        text = _SQL_PARAMETERS.sub("[parameters: " + REDACTED + "]", text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if _is_secret_key(key) else _redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower() in SECRET_KEYS


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    # Runs last before rendering: foreign records (uvicorn's access log) arrive here
    # already formatted in "event", and tracebacks are already rendered to data.
    for key, value in list(event_dict.items()):
        if _is_secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str | dict | list | tuple):
            event_dict[key] = _redact_value(value)
    return event_dict


def _add_request_id(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    request_id = correlation_id.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def _drop_color_message(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Route structlog, stdlib and uvicorn logging through one handler on the root logger."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # filter_by_level first: a disabled level costs no timestamp or context merge
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any
    tracebacks: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        # structured frames without their local variables (which may hold secrets)
        tracebacks = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        # a plain text traceback, never rich's (which prints every frame's locals)
        tracebacks = structlog.processors.format_exc_info
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            tracebacks,
            _redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers.clear()
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.disabled = False
        logger.setLevel(logging.NOTSET)  # LOG_LEVEL decides, not uvicorn's --log-level
    for noisy in ("sqlalchemy.engine", "aiosqlite", "asyncio", "multipart", "python_multipart"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
