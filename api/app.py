"""The HTTP/websocket edge: one FastAPI app, routers from every domain package.

Handlers stay thin (parse → service → serialize). Services are reached through
``app.state`` attributes set by the composition root (``callcore.app``):
``container``, ``cti``, ``ivr``, ``recording``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from api import health

if TYPE_CHECKING:  # pragma: no cover
    from callcore.app import Container


def create_app(container: "Container") -> FastAPI:
    app = FastAPI(
        title="callcore",
        version="0.1.0",
        description="Contact-center server for Asterisk: IVR, routing, CTI screen pop, recording and QA.",
    )
    app.state.container = container
    app.include_router(health.router)
    for router in container.routers():
        app.include_router(router)
    for name, service in container.app_services().items():
        setattr(app.state, name, service)
    return app
