"""The HTTP/websocket edge: one FastAPI app, routers from every domain package.

Handlers stay thin (parse → service → serialize). Services are reached through
``app.state`` attributes set by the composition root (``callcore.app``):
``container``, ``cti``, ``ivr``, ``recording``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from api import health

if TYPE_CHECKING:  # pragma: no cover
    from callcore.app import Container


def create_app(container: "Container") -> FastAPI:
    app = FastAPI(
        title="callcore",
        version="0.1.0",
        description="Contact-center server for Asterisk: IVR, routing, CTI screen pop, recording and QA.",
        # web UI: /docs is served by web.routes from vendored Swagger UI assets (no CDN); no ReDoc
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    app.include_router(health.router)
    for router in container.routers():
        app.include_router(router)
    # --- web UI (issue 14): `/`, /static, /docs, /api/web/*
    from web.routes import mount as mount_web

    mount_web(app)
    # --- end web UI
    for name, service in container.app_services().items():
        setattr(app.state, name, service)
    _harden(app, container.settings)  # security (issue 11)
    from callcore.metrics import MetricsMiddleware

    if getattr(container, "metrics", None) is not None:  # ops (issue 20): outermost, sees every answer
        app.add_middleware(MetricsMiddleware, metrics=container.metrics)
    from api import openapi

    openapi.install(app)  # ops (issue 20): summaries, permissions, error answers, event examples
    from cti import desk_socket

    # issue 18 round five: /ws in front of the middleware stack (one task and no middleware frames
    # per open desk socket); it counts the websocket metrics the middleware would have
    desk_socket.install(app, getattr(container, "metrics", None))
    return app


def _harden(app: FastAPI, settings: Any) -> None:
    """Body size limit, security headers, CORS only when configured (see ``api.security``)."""
    from api.security import BodyLimit, SecurityHeaders, install_db_value_errors

    install_db_value_errors(app)  # an id the database cannot hold → 422, not 500

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"], allow_headers=["authorization", "content-type", "x-csrf-token"],
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes)
