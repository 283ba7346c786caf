"""The delivery loop: every worker process sends the outbox's due deliveries.

One claim statement takes up to ``WEBHOOK_CONCURRENCY`` due deliveries (PostgreSQL:
FOR UPDATE SKIP LOCKED, so processes never take the same one; SQLite: its single
writer), marks them ``sending`` with a lease and counts the attempt. A delivery is
due when its retry time has come, or its lease ran out (the sender died: it is
sent again with the same ``webhook-id``, at least once), and no earlier delivery
of the same task or batch to the same receiver is unfinished (order per task).
Each attempt is logged, then the delivery is marked delivered, retried later
(backoff with jitter, or the receiver's ``Retry-After``) or failed, fenced by its
attempt count so a sender that lost its lease writes nothing but its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import httpx
from sqlalchemy import bindparam, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import __version__
from app.config import Settings
from app.events.bus import EventBus
from app.log import get_logger
from app.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSecret,
)
from app.models.base import table_of, utcnow
from app.webhooks import addresses, signing
from app.webhooks.outbox import DeliveriesRecorded

log = get_logger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
MAX_REDIRECTS = 5
MAX_ERROR_LENGTH = 500
USER_AGENT = f"NovelTaskManager-Webhooks/{__version__}"
ABANDONED = "the sender stopped before recording an answer (its lease ran out)"
PRUNE_EVERY_SECONDS = 3600.0


DELIVERIES = table_of(WebhookDelivery)
_ENDPOINTS = table_of(WebhookEndpoint)
_SECRETS = table_of(WebhookSecret)
_ATTEMPTS = table_of(WebhookAttempt)
_UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
_candidate = DELIVERIES.alias("candidate")
_earlier = DELIVERIES.alias("earlier")
_WAITS_FOR_EARLIER = exists().where(
    _earlier.c.subject_id == _candidate.c.subject_id,
    _earlier.c.url == _candidate.c.url,
    _earlier.c.endpoint_id.is_not_distinct_from(_candidate.c.endpoint_id),
    _earlier.c.id < _candidate.c.id,
    _earlier.c.status.in_(_UNFINISHED),
)
_DUE = (
    (_candidate.c.status == DeliveryStatus.PENDING)
    & (_candidate.c.next_attempt_at <= bindparam("now"))
) | (
    (_candidate.c.status == DeliveryStatus.SENDING) & (_candidate.c.locked_until < bindparam("now"))
)
_CLAIM = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id.in_(
            select(_candidate.c.id)
            .where(_DUE, ~_WAITS_FOR_EARLIER)
            .order_by(_candidate.c.next_attempt_at, _candidate.c.id)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(
        status=DeliveryStatus.SENDING,
        attempts=DELIVERIES.c.attempts + 1,
        locked_until=bindparam("b_locked_until"),
    )
    .returning(
        DELIVERIES.c.id,
        DELIVERIES.c.message_id,
        DELIVERIES.c.url,
        DELIVERIES.c.event,
        DELIVERIES.c.payload,
        DELIVERIES.c.attempts,
        DELIVERIES.c.created_at,
        DELIVERIES.c.deadline_at,
    )
)
_SIGNING_SECRETS = (
    select(DELIVERIES.c.id, func.coalesce(_ENDPOINTS.c.secret, _SECRETS.c.secret).label("secret"))
    .select_from(
        DELIVERIES.outerjoin(_ENDPOINTS, _ENDPOINTS.c.id == DELIVERIES.c.endpoint_id).outerjoin(
            _SECRETS,
            DELIVERIES.c.endpoint_id.is_(None) & (_SECRETS.c.owner_id == DELIVERIES.c.owner_id),
        )
    )
    .where(DELIVERIES.c.id.in_(bindparam("ids", expanding=True)))
)
_FINISH = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("b_id"),
        DELIVERIES.c.status == DeliveryStatus.SENDING,
        DELIVERIES.c.attempts == bindparam("b_attempts"),
    )
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next"),
        locked_until=None,
        last_status_code=bindparam("b_code"),
        last_error=bindparam("b_error"),
        finished_at=bindparam("b_finished"),
    )
)
_LOG_ATTEMPT = insert(_ATTEMPTS)
_LAST_LOGGED = (
    select(_ATTEMPTS.c.delivery_id, func.max(_ATTEMPTS.c.attempt).label("last"))
    .where(_ATTEMPTS.c.delivery_id.in_(bindparam("ids", expanding=True)))
    .group_by(_ATTEMPTS.c.delivery_id)
)
_FINISHED_BEFORE = DELIVERIES.c.finished_at < bindparam("before")
_PRUNE_ATTEMPTS = delete(_ATTEMPTS).where(
    _ATTEMPTS.c.delivery_id.in_(select(DELIVERIES.c.id).where(_FINISHED_BEFORE))
)
_PRUNE = delete(DELIVERIES).where(_FINISHED_BEFORE)


@dataclass(frozen=True, slots=True)
class Claimed:
    """One delivery this process now sends (its ``attempts``-th attempt)."""

    id: int
    message_id: str
    url: str
    event: str
    payload: str
    attempts: int
    deadline: datetime
    secret: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    delivered: bool
    retryable: bool
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


def backoff(base: float, attempts: int) -> float:
    """base·2^(attempts-1), capped at an hour, scaled by a random 0.5-1.0 (jitter)."""
    delay = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return float(delay * random.uniform(0.5, 1.0))


def retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` in seconds (a number of seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


async def claim(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, limit: int
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries in one transaction (see the module)."""
    now = utcnow()
    window = timedelta(seconds=settings.webhook_retry_window_seconds)
    async with sessions() as session, session.begin():
        rows = (
            await session.execute(
                _CLAIM,
                {
                    "now": now,
                    "limit": limit,
                    "b_locked_until": now + timedelta(seconds=settings.webhook_lease_seconds),
                },
            )
        ).all()
        if not rows:
            return []
        found = await session.execute(_SIGNING_SECRETS, {"ids": [row.id for row in rows]})
        secrets: dict[int, str | None] = {row.id: row.secret for row in found}
        retried = [(row.id, row.attempts) for row in rows if row.attempts > 1]
        if retried:
            await _log_abandoned(session, retried, now)
    return [
        Claimed(
            id=row.id,
            message_id=row.message_id,
            url=row.url,
            event=row.event,
            payload=row.payload,
            attempts=row.attempts,
            deadline=row.deadline_at or row.created_at + window,
            secret=secrets.get(row.id),
        )
        for row in rows
    ]


async def _log_abandoned(
    session: AsyncSession, claimed: list[tuple[int, int]], now: datetime
) -> None:
    """An attempt row for each earlier attempt of ``claimed`` (delivery id, this attempt's
    number) that logged none: its sender stopped (the lease ran out) before recording an
    answer, which the receiver may or may not have had."""
    logged = dict(
        (row.delivery_id, row.last)
        for row in await session.execute(_LAST_LOGGED, {"ids": [id_ for id_, _ in claimed]})
    )
    missing = [
        {
            "delivery_id": delivery_id,
            "attempt": attempt,
            "started_at": now,
            "duration_ms": 0,
            "status_code": None,
            "error": ABANDONED,
            "outcome": "abandoned",
        }
        for delivery_id, current in claimed
        for attempt in range(logged.get(delivery_id, 0) + 1, current)
    ]
    if missing:
        await session.execute(_LOG_ATTEMPT, missing)


async def prune(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """Delete deliveries finished more than ``RESULT_TTL_DAYS`` ago, with their attempts.
    The number of deliveries deleted."""
    before = utcnow() - timedelta(days=settings.result_ttl_days)
    async with sessions() as session, session.begin():
        await session.execute(_PRUNE_ATTEMPTS, {"before": before})
        result = await session.execute(_PRUNE, {"before": before})
    return int(getattr(result, "rowcount", 0) or 0)


async def send(client: httpx.AsyncClient, settings: Settings, claimed: Claimed) -> Outcome:
    """One attempt: the signed POST, to the address checked after resolution; redirects
    followed (each target checked again) only with ``WEBHOOK_FOLLOW_REDIRECTS``."""
    if claimed.secret is None:
        return Outcome(False, False, error="no signing secret: the callback secret was removed")
    now = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signing.headers(claimed.secret, claimed.message_id, now, claimed.payload),
    }
    url = claimed.url
    content = claimed.payload.encode()
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            target = await addresses.pin(url, allow_private=settings.webhook_allow_private)
            sent = dict(headers)
            if target.host_header:
                sent["host"] = target.host_header
            extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
            request = client.build_request(
                "POST", target.url, content=content, headers=sent, extensions=extensions
            )
            response = await client.send(request, stream=True)
            await response.aclose()  # the body is never read: a receiver cannot flood us
            code = response.status_code
            if 300 <= code < 400 and response.headers.get("location"):
                if not settings.webhook_follow_redirects:
                    return Outcome(False, False, code, f"redirect not followed (HTTP {code})")
                url = urljoin(url, response.headers["location"])
                continue
            if 200 <= code < 300:
                return Outcome(True, False, code)
            retryable = code >= 500 or code in (408, 429)
            wait = retry_after(response.headers.get("retry-after"), now) if retryable else None
            return Outcome(False, retryable, code, f"HTTP {code}", wait)
        return Outcome(False, False, None, f"more than {MAX_REDIRECTS} redirects")
    except addresses.RefusedTarget as exc:
        return Outcome(False, False, error=f"refused: {exc}")
    except httpx.TimeoutException as exc:
        return Outcome(False, True, error=f"timed out ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return Outcome(False, True, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])


async def finish(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    claimed: Claimed,
    outcome: Outcome,
    started_at: datetime,
    duration: float,
) -> DeliveryStatus:
    """Log the attempt and settle the delivery: delivered, failed, or pending again at
    its next retry time. A delivery whose lease was lost meanwhile keeps the state its
    new sender gives it (only the log row is written)."""
    now = utcnow()
    error = outcome.error
    status, next_at = DeliveryStatus.DELIVERED, now
    finished_at: datetime | None = now
    if not outcome.delivered:
        status = DeliveryStatus.FAILED
        if outcome.retryable:
            delay = max(backoff(settings.webhook_backoff_seconds, claimed.attempts),
                        outcome.retry_after or 0.0)  # fmt: skip
            next_at = now + timedelta(seconds=delay)
            if next_at <= claimed.deadline:
                status, finished_at = DeliveryStatus.PENDING, None
            else:
                error = f"{error}; gave up after {claimed.attempts} attempts"
    outcome_name = "retry" if status == DeliveryStatus.PENDING else status.value
    async with sessions() as session, session.begin():
        await session.execute(
            _LOG_ATTEMPT,
            {
                "delivery_id": claimed.id,
                "attempt": claimed.attempts,
                "started_at": started_at,
                "duration_ms": round(duration * 1000),
                "status_code": outcome.status_code,
                "error": error,
                "outcome": outcome_name,
            },
        )
        await session.execute(
            _FINISH,
            {
                "b_id": claimed.id,
                "b_attempts": claimed.attempts,
                "b_status": status,
                "b_next": next_at,
                "b_code": outcome.status_code,
                "b_error": error,
                "b_finished": finished_at,
            },
        )
    log.info(
        "webhook_attempt",
        delivery_id=claimed.id,
        webhook_id=claimed.message_id,
        webhook_event=claimed.event,
        attempt=claimed.attempts,
        status_code=outcome.status_code,
        outcome=status.value,
        error=error,
    )
    return status


class DeliveryLoop:
    """Sends due deliveries, ``WEBHOOK_CONCURRENCY`` at once, in one worker process.

    Woken when this process committed deliveries (``DeliveriesRecorded`` on its bus: a
    worker's completions), when a send ends, or every ``WEBHOOK_POLL_SECONDS`` (what
    other processes recorded, e.g. a cancel in the API). With no webhook configured it
    only polls.
    ``stop`` lets sends in flight finish for ``WEBHOOK_TIMEOUT_SECONDS``, then cancels
    them; a cancelled one is sent again once its lease runs out.
    """

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus | None = None,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
        )
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._sending: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._pruned_at = 0.0

    def _on_recorded(self, _event: DeliveriesRecorded) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self.bus is not None:
            self.bus.subscribe(DeliveriesRecorded, self._on_recorded)
        self._loop = asyncio.create_task(self._run(), name="webhook-deliveries")

    async def stop(self) -> None:
        if self.bus is not None:
            self.bus.unsubscribe(DeliveriesRecorded, self._on_recorded)
        self._stopping.set()
        self._wake.set()
        if self._loop is not None:
            await asyncio.wait([self._loop], timeout=self.settings.webhook_timeout_seconds)
            self._loop.cancel()
        if self._sending:
            await asyncio.wait(self._sending, timeout=self.settings.webhook_timeout_seconds)
        for task in list(self._sending):
            task.cancel()
        if self._sending:
            await asyncio.wait(self._sending)
        if self._own_client:
            await self.client.aclose()

    async def deliver(self, claimed: Claimed) -> DeliveryStatus:
        """One attempt of ``claimed``, logged and settled."""
        started_at, clock = utcnow(), time.monotonic()
        outcome = await send(self.client, self.settings, claimed)
        return await finish(
            self.sessions, self.settings, claimed, outcome, started_at, time.monotonic() - clock
        )

    async def run_until_idle(self) -> int:
        """Send what is due, and what becomes due meanwhile, until nothing is (tests).
        The number of attempts made."""
        made = 0
        while claimed := await claim(
            self.sessions, self.settings, self.settings.webhook_concurrency
        ):
            await asyncio.gather(*(self.deliver(item) for item in claimed))
            made += len(claimed)
        return made

    def _spawn(self, claimed: Claimed) -> None:
        task = asyncio.create_task(self._deliver_logged(claimed), name=f"webhook-{claimed.id}")
        self._sending.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._sending.discard(finished)
            self._wake.set()

        task.add_done_callback(done)

    async def _deliver_logged(self, claimed: Claimed) -> None:
        try:
            await self.deliver(claimed)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database went away: the lease brings it back
            log.exception("webhook_delivery_error", delivery_id=claimed.id)

    async def _prune_now_and_then(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = time.monotonic()
        try:
            if removed := await prune(self.sessions, self.settings):
                log.info("webhook_deliveries_pruned", deliveries=removed)
        except Exception:
            log.exception("webhook_prune_error")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            await self._prune_now_and_then()
            free = self.settings.webhook_concurrency - len(self._sending)
            claimed: list[Claimed] = []
            if free > 0:
                try:
                    claimed = await claim(self.sessions, self.settings, free)
                except Exception:
                    log.exception("webhook_claim_error")
            for item in claimed:
                self._spawn(item)
            if free > 0 and len(claimed) == free:
                continue  # more may be due
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll_seconds)
