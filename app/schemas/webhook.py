"""The webhooks contract (API.md "Webhooks")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from app.schemas.common import ReadModel, RequestModel, Text

WebhookEvent = Literal["task.completed", "task.failed", "task.cancelled", "batch.completed"]


class WebhookCreate(RequestModel):
    url: Annotated[Text, Field(min_length=1, max_length=2048)] = Field(
        description="http(s) URL that receives the events (a POST each, signed)"
    )
    events: list[WebhookEvent] = Field(
        min_length=1, max_length=4, description="The events this endpoint receives"
    )
    description: Annotated[Text, Field(max_length=200)] = ""


class WebhookRead(ReadModel):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="Signing secret (whsec_…, Standard Webhooks): shown only in this response"
    )


class CallbackSecretCreated(ReadModel):
    secret: str = Field(
        description="Signs deliveries to callback_url (whsec_…): shown only in this response"
    )
    created_at: datetime


class WebhookAttemptRead(ReadModel):
    attempt: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    outcome: Literal["delivered", "retry", "failed"]


class DeliveryRead(ReadModel):
    id: int
    webhook_id: str = Field(description="The webhook-id header: the same on every attempt")
    endpoint_id: str | None = Field(description="None for a delivery to a callback_url")
    url: str
    event: str
    subject_id: str = Field(description="The task's id (task.*) or the batch's (batch.completed)")
    status: Literal["pending", "sending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[WebhookAttemptRead]
