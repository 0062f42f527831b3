"""The portal's HTTP side: the page (GET, HEAD) and the download (the button's POST).

Opening the page never consumes anything, so link previews in Slack, Teams and mail
scanners burn no download. The POST holds one, atomically, then streams the archive from the
shared object store, chunk by chunk (memory does not grow with the archive), so any replica
serves any link. Only when the
last byte is written and the response ended does the hold become a download, with its
receipt; a client that goes away, a download slower than ``downloads.time_allowed``, or a server
stopping mid-way gives the hold back, so a dropped connection burns nothing and releases no
password.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

from aiohttp import web

from bot.objects import ObjectStoreError
from channels.portal import pages
from channels.portal.ratelimit import PortalRateLimiter
from handlers import archive_reads, portal
from handlers import portal_downloads as downloads
from handlers.services import Services

log = logging.getLogger(__name__)

SERVICES = web.AppKey("portal_services", Services)
RATE_LIMITER = web.AppKey("portal_rate_limiter", PortalRateLimiter)
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
    """The client's address and user agent. ``request.remote`` is the peer, or the client a
    trusted proxy names (``SAFEHAVEN_TRUSTED_PROXIES``: bot/client_address.py, applied to
    every request by the application's middleware)."""
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


async def _open(svc: Services, view: portal.LinkView) -> archive_reads.OpenArchive | None:
    return await archive_reads.opener(svc)(view.reference)


async def _stream(request: web.Request, response: web.StreamResponse,
                  chunks: AsyncIterator[bytes], sent: list[int]) -> None:
    await response.prepare(request)
    async for chunk in chunks:
        await response.write(chunk)  # waits while the client's buffers are full
        sent[0] += len(chunk)


def _cut(request: web.Request) -> None:
    """Close the connection under a response that will not be finished, so the client sees
    a broken download rather than waiting for the rest."""
    if request.transport is not None:
        request.transport.abort()


async def download(request: web.Request) -> web.StreamResponse:
    """POST: hold one download (or answer "not available"), stream the archive, and count it
    only once all of it was written."""
    svc = request.app[SERVICES]
    digest, limited = _admit(request)
    if limited is not None:
        return limited
    view = await _usable(request, digest)
    if view is None:
        return _not_found(svc)
    try:
        archive = await _open(svc, view)
    except (OSError, ObjectStoreError) as exc:
        log.error("the archive of %s could not be read: %s", view.reference,
                  type(exc).__name__)
        return _not_found(svc)
    if archive is None:
        log.error("the archive of %s is missing from the object store", view.reference)
        return _not_found(svc)
    size = archive.size
    try:
        ip, agent = _client(request)
        hold = await downloads.start_download(svc, token_hash=digest, ip=ip, user_agent=agent,
                                              size=size)
        if hold is None:  # another request took the last download, or it just expired
            return _not_found(svc)
        response = web.StreamResponse(headers={
            **SECURITY_HEADERS, "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{view.filename}"',
            "X-Download-Options": "noopen"})
        response.content_length = size
        sent = [0]
        reason: downloads.Interruption | None = downloads.Interruption.SERVER_ERROR
        try:
            async with asyncio.timeout(hold.allowed.total_seconds()):
                await _stream(request, response, archive.chunks, sent)
                if sent[0] != size:
                    reason = downloads.Interruption.INCOMPLETE
                    _cut(request)
                else:
                    await response.write_eof()
                    reason = None
        except ConnectionError:  # the client went away (reset, broken pipe)
            reason = downloads.Interruption.CLIENT_GONE
        except archive_reads.ArchiveTampered:  # reported; its last bytes never go out
            _cut(request)
        except TimeoutError:
            reason = downloads.Interruption.TOO_SLOW
            _cut(request)
        except asyncio.CancelledError:  # the client went (handler_cancellation), or shutdown
            gone = request.transport is None or request.transport.is_closing()
            reason = (downloads.Interruption.CLIENT_GONE if gone
                      else downloads.Interruption.SERVER_STOPPED)
            raise
        finally:
            # Shielded: a server stopping must still give the hold back (or count it).
            await asyncio.shield(_settle(svc, hold, reason, sent[0]))
        return response
    finally:
        await archive.chunks.aclose()


async def _settle(svc: Services, hold: downloads.DownloadHold,
                  reason: downloads.Interruption | None, sent: int) -> None:
    """Count a finished download and fire its receipt, or give an unfinished one back. A
    database failure here leaves the hold to lapse: given back, never counted."""
    try:
        if reason is not None:
            log.warning("download of %s interrupted: %s (%d of %d bytes written)",
                        hold.reference, reason, sent, hold.size)
            await downloads.interrupt_download(svc, hold, reason=reason, sent=sent)
            return
        done = await downloads.finish_download(svc, hold)
        if done is None:
            log.error("download of %s finished after its hold lapsed or its link was "
                      "withdrawn: not counted", hold.reference)
            return
        await downloads.after_download(svc, done)
    except Exception as exc:
        log.error("recording the end of a download of %s failed: %s", hold.reference,
                  type(exc).__name__)
