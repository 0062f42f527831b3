"""The portal's HTTP side: the page (GET, HEAD) and the download (the button's POST).

Opening the page never consumes anything, so link previews in Slack, Teams and mail
scanners burn no download. Only the POST counts one, atomically, and then streams the
archive from an already open file in fixed-size chunks: memory does not grow with the
archive, and the scheduler deleting a used-up archive cannot cut a download short.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from typing import IO

from aiohttp import web

from channels.portal import pages
from channels.portal.ratelimit import PortalRateLimiter
from handlers import portal
from handlers.services import Services

log = logging.getLogger(__name__)

SERVICES = web.AppKey("portal_services", Services)
RATE_LIMITER = web.AppKey("portal_rate_limiter", PortalRateLimiter)
CHUNK_BYTES = 256 * 1024
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43,128}")

SECURITY_HEADERS = {
    "Content-Security-Policy": pages.CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Robots-Tag": "noindex, nofollow",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def _html(body: str, *, status: int = 200, extra: dict[str, str] | None = None
          ) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                        headers={**SECURITY_HEADERS, **(extra or {})})


def _not_found(svc: Services) -> web.Response:
    return _html(pages.not_found_page(organisation=svc.policy.organisation), status=404)


def _client(request: web.Request) -> tuple[str, str]:
    return request.remote or "unknown", request.headers.get("User-Agent", "")


def _admit(request: web.Request) -> tuple[str, web.Response | None]:
    """The token's hash, and a 429 response if this request is over a limit."""
    digest = portal.hash_token(request.match_info["token"])
    wait = request.app[RATE_LIMITER].admit(token_hash=digest, ip=_client(request)[0])
    if not wait:
        return digest, None
    svc = request.app[SERVICES]
    return digest, _html(pages.too_many_page(organisation=svc.policy.organisation),
                         status=429, extra={"Retry-After": str(max(1, round(wait)))})


async def _usable(request: web.Request, digest: str) -> portal.LinkView | None:
    if not _TOKEN_SHAPE.fullmatch(request.match_info["token"]):
        return None  # not a token we could have issued: skip the database
    return await portal.find_usable(request.app[SERVICES], token_hash=digest)


async def page(request: web.Request) -> web.StreamResponse:
    """GET and HEAD: the page, or the one "not available" answer. Counts nothing."""
    svc = request.app[SERVICES]
    digest, limited = _admit(request)
    if limited is not None:
        return limited
    view = await _usable(request, digest)
    if view is None:
        return _not_found(svc)
    return _html(pages.download_page(
        organisation=svc.policy.organisation, reference=view.reference,
        filename=view.filename, size=view.size,
        expires=portal.describe_expiry(svc, view.expires_at), expires_at=view.expires_at,
        remaining=view.remaining, limit=view.download_limit))


def _open(view: portal.LinkView) -> tuple[IO[bytes], int]:
    handle = view.archive_path.open("rb")
    return handle, os.fstat(handle.fileno()).st_size


async def download(request: web.Request) -> web.StreamResponse:
    """POST: count one download (or answer "not available"), then stream the archive."""
    svc = request.app[SERVICES]
    digest, limited = _admit(request)
    if limited is not None:
        return limited
    view = await _usable(request, digest)
    if view is None:
        return _not_found(svc)
    try:
        handle, size = await asyncio.to_thread(_open, view)
    except OSError:
        log.error("the archive of %s is missing from disk", view.reference)
        return _not_found(svc)
    try:
        ip, agent = _client(request)
        counted = await portal.count_download(svc, token_hash=digest, ip=ip, user_agent=agent)
        if counted is None:  # another request took the last download, or it just expired
            return _not_found(svc)
        await portal.after_download(svc, counted)
        response = web.StreamResponse(headers={
            **SECURITY_HEADERS, "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{view.filename}"',
            "X-Download-Options": "noopen"})
        response.content_length = size
        await response.prepare(request)
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            log.warning("download of %s interrupted by the client (%d of %d used)",
                        counted.reference, counted.count, counted.limit)
        return response
    finally:
        await asyncio.to_thread(handle.close)
