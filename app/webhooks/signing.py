"""Secrets and signatures of the Standard Webhooks specification (standardwebhooks.com).

The reference library (``standardwebhooks``) signs, so receivers verifying with it,
or with any of the specification's libraries, agree with us byte for byte.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_message_id() -> str:
    """A ``webhook-id``: unique per event and receiver, repeated on every retry."""
    return "msg_" + uuid.uuid4().hex


def headers(secret: str, message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three signature headers for ``body`` sent at ``timestamp``."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, timestamp, body),
    }
