"""The recipient portal: an expiring, preview-safe download page for a transfer's archive.

:func:`plugin` (or :func:`mount_portal`) adds ``/p/<token>`` to the application
``bot.app.web.create_app`` builds: GET and HEAD show the page, the button's POST counts a
download and streams the archive. Tokens are kept out of the access log (see
:mod:`channels.portal.redaction`); for belt and braces, run the server with
``access_log_class=RedactingAccessLogger``.
"""

from __future__ import annotations

from aiohttp import web

from channels.portal.ratelimit import PortalLimits, PortalRateLimiter
from channels.portal.redaction import RedactingAccessLogger, install_log_filter, redact
from channels.portal.routes import RATE_LIMITER, SERVICES, download, page
from handlers.portal import PATH_PREFIX
from handlers.services import Services

__all__ = ["RATE_LIMITER", "PortalLimits", "PortalRateLimiter", "RedactingAccessLogger",
           "mount_portal", "plugin", "redact"]


def mount_portal(app: web.Application, svc: Services, *,
                 limits: PortalLimits | None = None) -> None:
    """Add the portal routes (every path under ``/p/``, so malformed links get the same
    "not available" page as any other) and its rate limiter."""
    install_log_filter()
    app[SERVICES] = svc
    app[RATE_LIMITER] = PortalRateLimiter(limits)
    path = PATH_PREFIX + "{token:.*}"
    app.router.add_get(path, page)
    app.router.add_post(path, download)


class PortalPlugin:
    """The recipient's download page; it reaches no chat users."""

    prefix = None
    notifier = None

    def __init__(self, svc: Services, limits: PortalLimits | None = None) -> None:
        self.svc = svc
        self.limits = limits

    def mount(self, app: web.Application) -> None:
        mount_portal(app, self.svc, limits=self.limits)

    def describe(self) -> list[str]:
        return [f"Recipient portal: {self.svc.settings.public_url}/p/<token> "
                "(tokens are redacted in logs)"]


def plugin(svc: Services, limits: PortalLimits | None = None) -> PortalPlugin:
    """The portal for these services."""
    return PortalPlugin(svc, limits)
