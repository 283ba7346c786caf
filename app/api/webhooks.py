"""Webhook routes: the account's endpoints, its callback secret and its deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.api.deps import CurrentUser, PageQuery, PageSizeQuery, SessionDep, SettingsDep
from app.api.responses import BODY_PROBLEMS, problems
from app.models import DeliveryStatus
from app.schemas.common import Page
from app.schemas.webhook import (
    CallbackSecretCreated,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
)
from app.webhooks import service as webhook_service

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SubjectQuery = Annotated[
    str | None, Query(max_length=36, description="Only deliveries about this task or batch")
]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The delivery's id")]
StatusQuery = Annotated[DeliveryStatus | None, Query(description="Only deliveries in this status")]


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses={**problems(409), **BODY_PROBLEMS},
)
async def create_webhook(
    body: WebhookCreate, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> WebhookCreated:
    """Register an endpoint for some events; its signing secret is in this response only."""
    endpoint = await webhook_service.create_endpoint(
        session, settings, user, url=body.url, events=list(body.events),
        description=body.description,
    )  # fmt: skip
    return WebhookCreated.model_validate(endpoint)


@router.get("", response_model=list[WebhookRead])
async def list_webhooks(session: SessionDep, user: CurrentUser) -> list[WebhookRead]:
    """The caller's endpoints (without their secrets)."""
    endpoints = await webhook_service.list_endpoints(session, user)
    return [WebhookRead.model_validate(endpoint) for endpoint in endpoints]


@router.post("/callback-secret", status_code=201, response_model=CallbackSecretCreated)
async def create_callback_secret(session: SessionDep, user: CurrentUser) -> CallbackSecretCreated:
    """Make (or replace) the secret that signs deliveries to uploads' `callback_url`;
    it is in this response only."""
    return CallbackSecretCreated.model_validate(
        await webhook_service.rotate_callback_secret(session, user)
    )


@router.get("/deliveries", response_model=Page[DeliveryRead])
async def list_deliveries(
    session: SessionDep,
    user: CurrentUser,
    subject_id: SubjectQuery = None,
    status: StatusQuery = None,
    callbacks: Annotated[
        bool, Query(description="Only deliveries to callback URLs (not to endpoints)")
    ] = False,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 20,
) -> Page[DeliveryRead]:
    """Every delivery of the caller's (to endpoints and callback URLs), newest first,
    each with its attempts."""
    items, total = await webhook_service.list_deliveries(
        session, user, callbacks=callbacks, subject_id=subject_id, status=status,
        offset=(page - 1) * page_size, limit=page_size,
    )  # fmt: skip
    return Page[DeliveryRead].model_validate(
        {"items": items, "total": total, "page": page, "page_size": page_size}
    )


@router.post(
    "/deliveries/{delivery_id}/resend",
    status_code=202,
    response_model=DeliveryRead,
    responses=problems(404, 409),
)
async def resend_delivery(
    delivery_id: DeliveryId, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> DeliveryRead:
    """Send a failed delivery again (same `webhook-id`, a fresh retry window)."""
    return DeliveryRead.model_validate(
        await webhook_service.resend(session, settings, user, delivery_id)
    )


@router.delete("/{webhook_id}", status_code=204, responses=problems(404))
async def delete_webhook(webhook_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """Remove an endpoint; its deliveries not yet sent are dropped."""
    await webhook_service.delete_endpoint(session, user, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryRead], responses=problems(404))
async def list_webhook_deliveries(
    webhook_id: str,
    session: SessionDep,
    user: CurrentUser,
    subject_id: SubjectQuery = None,
    status: StatusQuery = None,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 20,
) -> Page[DeliveryRead]:
    """An endpoint's deliveries, newest first, each with every attempt."""
    items, total = await webhook_service.list_deliveries(
        session, user, endpoint_id=webhook_id, subject_id=subject_id, status=status,
        offset=(page - 1) * page_size, limit=page_size,
    )  # fmt: skip
    return Page[DeliveryRead].model_validate(
        {"items": items, "total": total, "page": page, "page_size": page_size}
    )
