"""Webhooks: a user's endpoints, the outbox of deliveries and the log of every attempt.

A delivery is written in the same transaction as the task's final transition
(``app.webhooks.outbox``) and sent later by the delivery loop of a worker process
(``app.webhooks.delivery``); see the README's "Webhooks".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, EnumText, created_at_column, id_column, utcnow
from app.models.enums import DeliveryStatus, check_in
from app.models.task import BigIntId


class WebhookEndpoint(Base):
    """An account-level endpoint: where the events it asked for are sent, signed with
    its own secret (``whsec_…``, shown once when it is created)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = id_column()
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(200), default="")
    secret: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = created_at_column()


class WebhookSecret(Base):
    """The secret that signs deliveries to an upload's or a batch's ``callback_url``
    (one per account, shown once when it is made)."""

    __tablename__ = "webhook_secrets"

    owner_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = created_at_column()


class WebhookDelivery(Base):
    """One event for one receiver: an outbox row, sent until delivered or out of time.

    ``message_id`` is the ``webhook-id`` header, the same on every attempt and
    re-send. ``subject_id`` (the task or batch) orders deliveries: one to the same
    receiver (``endpoint_id`` or ``url``) waits while an earlier one is unfinished.
    ``sending`` with ``locked_until`` past means its sender died: it is taken again.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(check_in("status", DeliveryStatus), name="status"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_subject", "subject_id", "id"),
        Index("ix_webhook_deliveries_owner", "owner_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    event: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(36))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        EnumText(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # retried until then; NULL: WEBHOOK_RETRY_WINDOW_SECONDS after created_at (a re-send sets it)
    deadline_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    finished_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One try of a delivery: when, how long, what the receiver answered or what failed."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
