"""The notifications service's ASGI app: the consumer, plus the log of sent messages."""

from __future__ import annotations

from fastapi import FastAPI

from libs.runtime.app import create_service_app
from libs.runtime.runtime import Shared, shared_for
from services.notifications.api import router
from services.notifications.bootstrap import NotificationsDeps, build_deps
from services.notifications.settings import NotificationsSettings


def create_app(
    settings: NotificationsSettings | None = None,
    shared: Shared | None = None,
    deps: NotificationsDeps | None = None,
) -> FastAPI:
    """The notifications app; nothing is built before this is called."""
    if deps is None:
        settings = settings or NotificationsSettings()
        deps = build_deps(settings, shared or shared_for(settings.runtime))
    app = create_service_app(runtime=deps.runtime, title="Store notifications", routers=[router])
    app.state.notifications = deps
    return app
