"""A download counts, and its receipt fires, only once the whole archive was sent.

The attack: POST the download button and hang up at once. Before, that used a download and
released the "SMS once receipt is confirmed" password to a recipient who has nothing. The
archive here is larger than every socket buffer between server and client, so the server
cannot have written it all when the client goes; each test waits for the server's own
record of how the download ended, never for a time.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from bot.app.web import create_app
from handlers import housekeeping, portal, portal_downloads
from handlers.services import Services
from store import audit
from store.models import PortalLink
from tests.channels.portal.conftest import (
    Share,
    SharedLink,
    archive_kept,
    audit_rows,
    audited,
    download_settled,
    link_row,
    outbox_password,
    put_archive,
    told_downloaded,
    transfer_row,
)
from tests.support.core import Clock

Client = TestClient[Any, Any]
MB = 1024 * 1024


@dataclass
class Served:
    host: str
    port: int
    http: ClientSession


@pytest.fixture(params=[False, True], ids=["run_app-default", "handler-cancellation"])
async def served(request: pytest.FixtureRequest, services: Services
                 ) -> AsyncIterator[Served]:
    """The app on a real port, as ``safehaven serve`` runs it (aiohttp's default: a client
    hanging up does not cancel the handler) and with handler cancellation on (as aiohttp's
    test server runs it): the download must end the same way in both."""
    runner = web.AppRunner(create_app(services, migrate=False, scheduler=False),
                           handler_cancellation=request.param)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        async with ClientSession(base_url=f"http://{host}:{port}") as http:
            yield Served(host, port, http)
    finally:
        await runner.cleanup()


def _bigger_than_socket_buffers() -> int:
    """More than the kernel's largest send buffer (the client's receive buffer is pinned
    small), so a download cannot be written out before the client hangs up."""
    try:
        largest = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        largest = 4 * MB
    return largest + 8 * MB


async def _one_download_allowed(svc: Services, link: SharedLink, size: int) -> None:
    """Set-up: a limit of one (so a second request shows the limit) and a large archive."""
    async with svc.db.transaction() as s:
        await s.execute(update(PortalLink).where(PortalLink.reference == link.reference)
                        .values(download_limit=1))
    await put_archive(svc, link.reference, megabytes=size // MB, fill=secrets.token_bytes)


async def _post_and_read_headers(server: Served, path: str
                                 ) -> tuple[bytes, asyncio.StreamWriter]:
    """POST the download button over a raw connection and read only the response headers."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                 "User-Agent: hang-up/1.0\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    return await reader.readuntil(b"\r\n\r\n"), writer


def _hang_up(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    writer.close()


async def test_hanging_up_mid_download_counts_nothing_and_releases_no_password(
        services: Services, share: Share, served: Served) -> None:
    client = served.http
    link = await share(password="sms-on-receipt")
    size = _bigger_than_socket_buffers()
    await _one_download_allowed(services, link, size)

    headers, writer = await _post_and_read_headers(served, link.path)
    assert headers.startswith(b"HTTP/1.1 200") and f"{size}".encode() in headers
    # While that download runs it holds the only download: a second one is refused.
    assert (await link_row(services, link.reference)).downloads == 1
    assert (await client.post(link.path)).status == 404
    _hang_up(writer)

    ended = await audited(services, link.reference, "download_interrupted")
    assert ended[0].details["reason"] == "client disconnected"
    assert ended[0].details["sent"] < size == ended[0].details["size"]
    assert (await link_row(services, link.reference)).downloads == 0
    actions = [r.action for r in await audit_rows(services, link.reference)]
    assert "downloaded" not in actions and "receipt_confirmed" not in actions
    assert outbox_password(services, link.reference) is None  # no SMS
    assert told_downloaded(services, link.reference) == 0  # the sender is not told
    assert (await transfer_row(services, link.reference)).password_sealed is not None

    # The link still works, once: a whole download counts and releases exactly one SMS.
    page = await client.get(link.path)
    assert page.status == 200 and "1 of 1" in await page.text()
    resp = await client.post(link.path)
    assert resp.status == 200 and len(await resp.read()) == size
    await download_settled(services, link.reference)
    assert (await link_row(services, link.reference)).downloads == 1
    downloaded = await audited(services, link.reference, "downloaded")
    assert downloaded[0].details["download"] == 1 and downloaded[0].details["limit"] == 1
    assert outbox_password(services, link.reference) is not None
    text = services.settings.outbox_path.read_text()
    assert text.count(f"the password for {link.reference} is") == 1
    assert (await client.post(link.path)).status == 404
    async with services.db.read() as s:
        assert (await audit.verify(s)).ok


async def test_a_download_its_process_never_finished_is_given_back_when_its_hold_lapses(
        services: Services, share: Share, client: Client, clock: Clock) -> None:
    link = await share(password="sms-on-receipt")
    size = 2 * MB
    await _one_download_allowed(services, link, size)
    # A download whose serving process dies mid-way: held, and never finished.
    hold = await portal_downloads.start_download(
        services, token_hash=portal.hash_token(link.token), ip="203.0.113.9",
        user_agent="crashed/1.0", size=size)
    assert hold is not None
    assert (await client.post(link.path)).status == 404

    clock.advance(seconds=(hold.allowed + portal_downloads.HOLD_MARGIN).total_seconds() - 60)
    await housekeeping.tick(services)
    assert await archive_kept(services, link.reference)  # a download in progress keeps it
    assert (await link_row(services, link.reference)).downloads == 1

    clock.advance(seconds=60)
    await housekeeping.tick(services)
    assert await archive_kept(services, link.reference)
    ended = await audited(services, link.reference, "download_interrupted")
    assert ended[0].details["reason"] == "hold lapsed: the process serving it stopped"
    assert ended[0].details["attempt"] == hold.attempt
    assert (await link_row(services, link.reference)).downloads == 0
    assert outbox_password(services, link.reference) is None
    await housekeeping.tick(services)  # given back once only
    assert len(await audited(services, link.reference, "download_interrupted")) == 1

    resp = await client.post(link.path)
    assert resp.status == 200 and len(await resp.read()) == size
    await download_settled(services, link.reference)
    assert (await link_row(services, link.reference)).downloads == 1
    assert outbox_password(services, link.reference) is not None
    # The dead download's late finish, had its process come back, would count nothing.
    assert await portal_downloads.finish_download(services, hold) is None
    assert len(await audited(services, link.reference, "downloaded")) == 1
