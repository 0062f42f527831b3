"""Interrupted downloads are not free for ever, and a withdrawn link counts nothing.

The attacks (second hostile review of issue 11): a client that breaks off every download
just before the end is given it back each time, so it can take nearly all of an archive
again and again (a ZIP's local headers let it extract most members) without a download
being counted; and a download that finishes after the sender cancelled (or after the link
was locked) still counted and fired the receipt. Each test goes over HTTP to the app on a
real port and waits for the server's own record of how each download ended, never a time.
"""

from __future__ import annotations

import asyncio
import socket

from sqlalchemy import update

from handlers import portal_downloads
from handlers.services import Services
from store.models import PortalLink
from tests.channels.portal.conftest import (
    Share,
    SharedLink,
    audit_rows,
    audited,
    link_row,
    outbox_password,
    put_archive,
    told_downloaded,
    transfer_row,
)
from tests.channels.portal.test_interrupted_download import (  # noqa: F401 (fixture)
    MB,
    Served,
    _bigger_than_socket_buffers,
    _hang_up,
    served,
)


async def _archive(svc: Services, link: SharedLink, *, size: int, limit: int) -> None:
    """Set-up: the link's download limit, and an archive larger than the socket buffers."""
    async with svc.db.transaction() as s:
        await s.execute(update(PortalLink).where(PortalLink.reference == link.reference)
                        .values(download_limit=limit))
    await put_archive(svc, link.reference, megabytes=size // MB)


async def _start(server: Served, path: str
                 ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """POST the download button over a raw connection with a small receive window and
    read the response headers; the body is then read (or not) by the caller."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                 "User-Agent: partial/1.0\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    headers = await reader.readuntil(b"\r\n\r\n")
    assert headers.startswith(b"HTTP/1.1 200"), headers
    return reader, writer


def told(svc: Services, words: str, sender: str = "console:alice") -> int:
    notifier = svc.notifier
    return sum(words in getattr(r, "text", "")
               for r in notifier.for_user(sender))  # type: ignore[attr-defined]


async def test_breaking_off_downloads_again_and_again_locks_the_link(
        services: Services, share: Share, served: Served) -> None:  # noqa: F811
    link = await share(password="sms-on-receipt")
    size = _bigger_than_socket_buffers()
    await _archive(services, link, size=size, limit=1)

    for attempt in range(1, portal_downloads.MAX_INTERRUPTED_DOWNLOADS + 1):
        if attempt > 1:  # until the limit, a broken-off download is given back
            assert (await served.http.get(link.path)).status == 200
        reader, writer = await _start(served, link.path)
        await reader.readexactly(MB)  # most of what the window lets through, then gone
        _hang_up(writer)
        ended = await audited(services, link.reference, "download_interrupted", times=attempt)
        assert ended[-1].details["reason"] == "client disconnected"

    locked = await audited(services, link.reference, "portal_link_locked")
    assert locked[0].details["interrupted"] == portal_downloads.MAX_INTERRUPTED_DOWNLOADS
    row = await link_row(services, link.reference)
    assert row.revoked_at is not None and row.downloads == 0
    assert row.interrupted_downloads == portal_downloads.MAX_INTERRUPTED_DOWNLOADS
    # Nobody downloads from it any more, by page or by button.
    assert (await served.http.get(link.path)).status == 404
    assert (await served.http.post(link.path)).status == 404
    assert len(await audited(services, link.reference, "download_interrupted",
                             times=portal_downloads.MAX_INTERRUPTED_DOWNLOADS)) == 3
    # The sender is told, once; nothing was counted, and no password went.
    assert told(services, f"The secure download link for transfer {link.reference} was "
                          "locked") == 1
    assert told_downloaded(services, link.reference) == 0
    assert outbox_password(services, link.reference) is None
    actions = [r.action for r in await audit_rows(services, link.reference)]
    assert "downloaded" not in actions and "receipt_confirmed" not in actions


async def test_a_download_finishing_after_cancel_counts_nothing_and_releases_nothing(
        services: Services, share: Share, served: Served) -> None:  # noqa: F811
    link = await share(password="sms-on-receipt")
    size = _bigger_than_socket_buffers()
    await _archive(services, link, size=size, limit=1)

    reader, writer = await _start(served, link.path)
    await link.chat.cancel(link.reference)
    assert (await transfer_row(services, link.reference)).status == "cancelled"
    assert len(await reader.readexactly(size)) == size  # the whole archive, after the cancel
    writer.close()

    after = await audited(services, link.reference, "download_after_withdrawal")
    assert after[0].details["size"] == size
    actions = [r.action for r in await audit_rows(services, link.reference)]
    assert "downloaded" not in actions and "receipt_confirmed" not in actions
    assert told_downloaded(services, link.reference) == 0
    assert outbox_password(services, link.reference) is None


async def test_a_download_finishing_after_its_link_was_locked_releases_no_password(
        services: Services, share: Share, served: Served) -> None:  # noqa: F811
    """A download under way while others break off until the link locks: it finishes,
    but the link was withdrawn, so the "SMS once received" password stays unsent."""
    link = await share(password="sms-on-receipt")
    size = _bigger_than_socket_buffers()
    await _archive(services, link, size=size,
                   limit=portal_downloads.MAX_INTERRUPTED_DOWNLOADS + 1)

    slow_reader, slow_writer = await _start(served, link.path)
    for attempt in range(1, portal_downloads.MAX_INTERRUPTED_DOWNLOADS + 1):
        _, writer = await _start(served, link.path)
        _hang_up(writer)
        await audited(services, link.reference, "download_interrupted", times=attempt)
    await audited(services, link.reference, "portal_link_locked")

    assert len(await slow_reader.readexactly(size)) == size
    slow_writer.close()
    await audited(services, link.reference, "download_after_withdrawal")
    assert told_downloaded(services, link.reference) == 0
    assert outbox_password(services, link.reference) is None
    transfer = await transfer_row(services, link.reference)
    assert transfer.status == "ready" and transfer.password_sealed is not None  # unsent
