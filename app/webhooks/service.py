"""The account's webhook endpoints, its callback secret, and its deliveries.

Everything here is its owner's alone, admins included: another account's
endpoint or delivery is reported as not found (404), so ids do not leak.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Conflict, NotFound, Unprocessable
from app.models import (
    DeliveryStatus,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSecret,
)
from app.models.base import utcnow
from app.webhooks import addresses, signing

MAX_ENDPOINTS = 20


def checked_url(settings: Settings, url: str, field: tuple[str, ...]) -> str:
    """``url`` if it may receive webhooks (``addresses.check_url``), else 422 at ``field``."""
    try:
        return addresses.check_url(url.strip(), allow_private=settings.webhook_allow_private)
    except addresses.RefusedTarget as exc:
        raise Unprocessable(f"{field[-1]}: {exc}", code="invalid_callback_url", loc=field) from None


async def callback_url(
    session: AsyncSession, settings: Settings, user: User, url: str | None
) -> str | None:
    """An upload's ``callback_url`` field, checked; the account must have a callback
    secret to sign with (422 otherwise)."""
    if not url or not url.strip():
        return None
    checked = checked_url(settings, url, ("body", "callback_url"))
    if await session.get(WebhookSecret, user.id) is None:
        raise Unprocessable(
            "callback_url: make a signing secret first (POST /api/v1/webhooks/callback-secret)",
            code="callback_secret_missing",
            loc=("body", "callback_url"),
        )
    return checked


async def create_endpoint(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    url: str,
    events: list[str],
    description: str,
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows it once)."""
    checked = checked_url(settings, url, ("body", "url"))
    count = select(func.count()).where(WebhookEndpoint.owner_id == user.id)
    if int((await session.execute(count)).scalar_one()) >= MAX_ENDPOINTS:
        raise Conflict(
            f"An account has at most {MAX_ENDPOINTS} webhook endpoints",
            code="too_many_webhooks",
        )
    endpoint = WebhookEndpoint(
        owner_id=user.id,
        url=checked,
        events=list(dict.fromkeys(events)),
        description=description.strip(),
        secret=signing.new_secret(),
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def list_endpoints(session: AsyncSession, user: User) -> list[WebhookEndpoint]:
    query = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.owner_id == user.id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list((await session.execute(query)).scalars())


async def get_endpoint(session: AsyncSession, user: User, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.owner_id != user.id:
        raise NotFound(f"Webhook {endpoint_id} not found", code="webhook_not_found")
    return endpoint


async def delete_endpoint(session: AsyncSession, user: User, endpoint_id: str) -> None:
    """The endpoint and its deliveries (unsent ones are dropped)."""
    await session.delete(await get_endpoint(session, user, endpoint_id))
    await session.flush()


async def rotate_callback_secret(session: AsyncSession, user: User) -> WebhookSecret:
    """A new secret for the account's callback_url deliveries (replacing the old one at
    once: deliveries not yet sent are signed with the new one)."""
    row = await session.get(WebhookSecret, user.id)
    if row is None:
        row = WebhookSecret(owner_id=user.id, secret=signing.new_secret())
        session.add(row)
    else:
        row.secret = signing.new_secret()
        row.created_at = utcnow()
    await session.flush()
    return row


async def _attempts(session: AsyncSession, ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    logged: dict[int, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in ids}
    if ids:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt, WebhookAttempt.id)
        )
        for attempt in (await session.execute(query)).scalars():
            logged[attempt.delivery_id].append(attempt)
    return logged


def _read(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    unfinished = delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
    return {
        "id": delivery.id,
        "webhook_id": delivery.message_id,
        "endpoint_id": delivery.endpoint_id,
        "url": delivery.url,
        "event": delivery.event,
        "subject_id": delivery.subject_id,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at if unfinished else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "finished_at": delivery.finished_at,
        "attempt_log": attempts,
    }


async def list_deliveries(
    session: AsyncSession,
    user: User,
    *,
    endpoint_id: str | None = None,
    callbacks: bool = False,
    subject_id: str | None = None,
    status: DeliveryStatus | None = None,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """The account's deliveries, newest first, each with its attempts: an endpoint's
    (404 if it is not the caller's), or with ``callbacks`` those to callback URLs."""
    conditions: list[Any] = [WebhookDelivery.owner_id == user.id]
    if endpoint_id is not None:
        await get_endpoint(session, user, endpoint_id)
        conditions.append(WebhookDelivery.endpoint_id == endpoint_id)
    if callbacks:
        conditions.append(WebhookDelivery.endpoint_id.is_(None))
    if subject_id is not None:
        conditions.append(WebhookDelivery.subject_id == subject_id)
    if status is not None:
        conditions.append(WebhookDelivery.status == status)
    total_query = select(func.count()).select_from(WebhookDelivery).where(*conditions)
    total = int((await session.execute(total_query)).scalar_one())
    query = (
        select(WebhookDelivery)
        .where(*conditions)
        .order_by(WebhookDelivery.id.desc())
        .offset(offset)
        .limit(limit)
    )
    deliveries = list((await session.execute(query)).scalars())
    logged = await _attempts(session, [delivery.id for delivery in deliveries])
    return [_read(delivery, logged[delivery.id]) for delivery in deliveries], total


async def resend(session: AsyncSession, settings: Settings, user: User, delivery_id: int) -> Any:
    """A failed delivery due again at once, with a fresh retry window and the same
    ``webhook-id``; 409 unless it failed."""
    delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.owner_id != user.id:
        raise NotFound(f"Delivery {delivery_id} not found", code="delivery_not_found")
    if delivery.status != DeliveryStatus.FAILED:
        raise Conflict(
            f"Delivery {delivery_id} is {delivery.status.value}; only a failed one can be re-sent",
            code="invalid_transition",
        )
    now = utcnow()
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.deadline_at = now + timedelta(seconds=settings.webhook_retry_window_seconds)
    delivery.finished_at = None
    delivery.locked_until = None
    await session.flush()
    logged = await _attempts(session, [delivery.id])
    return _read(delivery, logged[delivery.id])
