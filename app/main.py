"""The application factory: middleware, routers, problem handlers, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import ValidationError
from starlette.types import ASGIApp

from app import __version__
from app.api import api_router, dashboard
from app.api import docs as api_docs
from app.api import health as health_api
from app.api.body_limits import BodyLimitMiddleware
from app.api.edge import NulGuardMiddleware
from app.api.gate import ApiGateMiddleware
from app.api.problems import CatchAllMiddleware, install_problem_handlers
from app.api.proxies import ClientAddressMiddleware
from app.config import Settings, describe_settings_error, get_settings
from app.events.going_away import close_live_connections_on_stop
from app.events.hub import EventHub
from app.events.publish import TaskEvent
from app.events.resync import resync_hook
from app.log import configure_logging, get_logger
from app.metrics import build_registry
from app.models.base import new_id_hex
from app.processors import registry
from app.queue.pool import WorkerPool
from app.runtime import open_runtime
from app.services import storage
from app.services.rate_limit import RateLimiter
from app.services.uploads import STALE_TEMP_SECONDS
from app.services.users import ensure_admin
from app.webhooks.delivery import DeliveryLoop

log = get_logger(__name__)

REQUEST_ID_MAX_LENGTH = 128


def _valid_request_id(value: str) -> bool:
    """Echo any client id that is short printable ASCII; otherwise a fresh one is made."""
    return 0 < len(value) <= REQUEST_ID_MAX_LENGTH and value.isascii() and value.isprintable()


def _lifespan(settings: Settings) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            runtime = open_runtime(settings, stack, for_workers=False)
            session_factory = runtime.sessions
            settings.upload_dir.mkdir(parents=True, exist_ok=True)
            swept = await storage.sweep_temp(settings.upload_dir, STALE_TEMP_SECONDS)
            if swept:
                log.info("stale_uploads_removed", files=swept)
            try:  # the bucket's leftovers of API processes that died mid-upload
                swept = await storage.sweep_temp_objects(settings, STALE_TEMP_SECONDS)
            except OSError as exc:  # unreachable now: the next start sweeps them
                log.warning("stale_upload_objects_not_swept", error=str(exc))
            else:
                if swept:
                    log.info("stale_upload_objects_removed", objects=swept)
            registry.configure(settings.processors)  # uploads validate processor names
            state: dict[str, Any] = {
                "settings": settings,
                "engine": runtime.engine,
                "session_factory": session_factory,
                "bus": runtime.bus,
            }
            app.state.session_factory = session_factory
            app.state.bus = runtime.bus
            app.state.rate_limiter = RateLimiter(settings.rate_limit_storage_uri)
            stack.push_async_callback(app.state.rate_limiter.close)
            await ensure_admin(session_factory, settings)
            hub = app.state.hub = state["hub"] = EventHub()
            runtime.bus.subscribe(TaskEvent, hub.publish)
            stack.callback(runtime.bus.unsubscribe, TaskEvent, hub.publish)
            stack.callback(hub.close_all)
            stack.enter_context(close_live_connections_on_stop(hub))  # 1001 on SIGTERM
            if runtime.listener is not None:
                listener = runtime.listener
                listener.on_reconnect.append(resync_hook(hub, listener, session_factory))
                await runtime.start_listener(stack)
                state["listener"] = app.state.listener = listener
            if settings.worker_concurrency > 0:
                worker_sessions = runtime.worker_sessions(stack)
                pool = WorkerPool(settings, worker_sessions, runtime.bus)
                await pool.start()
                stack.push_async_callback(pool.stop)
                state["worker_pool"] = app.state.worker_pool = pool
                deliveries = DeliveryLoop(settings, worker_sessions, runtime.bus)
                await deliveries.start()
                stack.push_async_callback(deliveries.stop)
                state["webhook_deliveries"] = app.state.webhook_deliveries = deliveries
            log.info(
                "service_started",
                version=__version__,
                environment=settings.environment,
                backend="sqlite" if settings.is_sqlite else "postgresql",
                workers=settings.worker_concurrency,
            )
            yield state
            log.info("service_stopping")

    return lifespan


def load_settings() -> Settings:
    """The process settings, or exit with a message naming each bad variable."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise SystemExit(describe_settings_error(exc)) from None


class NovelTaskManager(FastAPI):
    """The service's FastAPI app: the client's address is settled before anything else runs.

    ``ClientAddressMiddleware`` needs the server's own ``send``, so it wraps the
    whole stack, outside Starlette's error middleware (``app.api.proxies``).
    """

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        return ClientAddressMiddleware(stack, self.state.settings.forwarded_allow_ips)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = NovelTaskManager(
        title="Novel Task Manager",
        version=__version__,
        description=(
            "Upload manuscripts, analyse them in a durable queue, watch progress live "
            "(WebSocket or SSE) and download the report."
        ),
        lifespan=_lifespan(settings),
        docs_url=None,  # /docs and /redoc come from app.api.docs, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    install_problem_handlers(app)

    app.include_router(health_api.router)
    app.include_router(dashboard.router)
    app.mount("/static", dashboard.static_files, name="static")
    app.include_router(api_docs.router)
    app.mount(api_docs.ASSETS_URL, api_docs.assets, name="docs-assets")
    app.include_router(api_router)

    registry = build_registry()
    app.state.metrics_registry = registry
    Instrumentator(
        registry=registry,
        excluded_handlers=["/metrics", r".*/events$"],
        should_group_untemplated=True,
    ).instrument(app)

    # Added innermost first: the gate authenticates before routing (a credential holding
    # NUL is refused unread); the NUL guard, inside it, refuses a NUL in path, query or
    # headers with 422 before any route; CatchAll sits inside CORS and the request id, so
    # even a 500 carries X-Request-ID and CORS headers.
    # Body limits sit inside the gate (401 before any size or pace refusal) and outside
    # the routes, whose handlers render their 413 and 408 as problems (app.api.body_limits).
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(ApiGateMiddleware)
    # CatchAll also answers 503/507, not 500, for a database or storage that is down
    # (the gate reads the database).
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[
            "X-Request-ID",
            "Location",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Content-Disposition",
            "ETag",
        ],
    )
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        validator=_valid_request_id,
        generator=new_id_hex,  # its default, uuid4().hex, costs a system call per request
    )
    return app


def __getattr__(name: str) -> Any:
    # ``uvicorn app.main:app`` builds the app on first access, not at import, so
    # tests and tools can import this module without reading the environment.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
