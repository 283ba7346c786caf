"""Operations routes: /health and /metrics (no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import SessionFactoryDep, SettingsDep
from app.schemas.health import HealthRead
from app.services import health as health_service
from app.services import stats as stats_service

router = APIRouter(tags=["operations"])


@router.get(
    "/health",
    response_model=HealthRead,
    responses={503: {"model": HealthRead, "description": "The service is unhealthy"}},
)
async def health(sessions: SessionFactoryDep, settings: SettingsDep) -> JSONResponse:
    """Database reachable, upload dir writable, live workers, version. 503 when unhealthy."""
    body = await health_service.check_health(sessions, settings)
    status = 503 if body["status"] == "unhealthy" else 200
    return JSONResponse(body, status_code=status)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request, sessions: SessionFactoryDep, settings: SettingsDep) -> Response:
    """Prometheus metrics: task counts and queue depth are read from the database at scrape time."""
    await stats_service.refresh_gauges(sessions, settings)
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
