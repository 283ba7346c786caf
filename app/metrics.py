"""Domain metrics (prometheus-client). HTTP metrics come from the instrumentator.

The metric objects live at module level; each app registers them into its own
``CollectorRegistry`` (see ``build_registry``) so several apps in one process
(tests) never clash.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

TASKS_TOTAL = Gauge(
    "tasks_total",
    "Tasks by status (read from the database at scrape time)",
    ["status"],
    registry=None,
)
QUEUE_DEPTH = Gauge("queue_depth", "Pending tasks waiting in the queue", registry=None)
WEBSOCKET_CONNECTIONS = Gauge(
    "websocket_connections", "Open WebSocket connections in this process", registry=None
)
SSE_CONNECTIONS = Gauge("sse_connections", "Open SSE streams in this process", registry=None)
ACTIVE_WORKERS = Gauge("active_workers", "Worker processes with a live heartbeat", registry=None)
TASK_DURATION = Histogram(
    "task_duration_seconds",
    "Duration of task attempts run by this process, by processor and outcome",
    ["processor", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=None,
)

DOMAIN_METRICS = (
    TASKS_TOTAL,
    QUEUE_DEPTH,
    WEBSOCKET_CONNECTIONS,
    SSE_CONNECTIONS,
    ACTIVE_WORKERS,
    TASK_DURATION,
)


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    for metric in DOMAIN_METRICS:
        registry.register(metric)
    return registry
