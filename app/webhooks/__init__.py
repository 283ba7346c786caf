"""Signed webhooks on a task's (or a batch's) final event.

::

    final transition (app.queue.attempts) ──outbox.record──► webhook_deliveries (same transaction)
                                                                   │
    DeliveryLoop (each worker process) ◄── claim (SKIP LOCKED) ────┘
        │ addresses.pin: refuse private targets after DNS resolution (SSRF)
        │ signing.headers: Standard Webhooks webhook-id / -timestamp / -signature
        ▼
    POST to the receiver; every attempt logged (webhook_attempts); retried with
    backoff and jitter on timeouts, connection errors, 5xx and 429 until
    WEBHOOK_RETRY_WINDOW_SECONDS, then failed (a user may re-send it).

The endpoints' API is ``app.api.webhooks`` over ``app.webhooks.service``.
"""
