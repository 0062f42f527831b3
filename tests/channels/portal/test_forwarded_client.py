"""The portal's per-address rate limit counts the client's address as
``SAFEHAVEN_TRUSTED_PROXIES`` decides it (bot/client_address.py): behind a trusted proxy each
recipient has their own limit, whatever they write into X-Forwarded-For; with no trusted
proxy the header changes nothing. The same address goes into the download records (shown
through a real nginx in tests/ops/test_nginx_proxy.py)."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence

from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import create_app
from bot.client_address import parse_trusted_proxies
from channels.portal import RATE_LIMITER, PortalLimits, PortalRateLimiter
from handlers.services import Services

PER_IP = 3


async def statuses(services: Services, trusted: str, forwarded: Sequence[str | None]
                   ) -> list[int]:
    """The status of one request for an unknown link per entry of ``forwarded`` (the
    X-Forwarded-For sent, or none), from 127.0.0.1, with ``PER_IP`` requests allowed per
    address (and a window no test outlasts)."""
    services.settings = dataclasses.replace(
        services.settings, trusted_proxies=parse_trusted_proxies(trusted))
    app = create_app(services, migrate=False, scheduler=False)
    app[RATE_LIMITER] = PortalRateLimiter(PortalLimits(per_token=100, per_ip=PER_IP,
                                                       window_seconds=3600))
    found = []
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for value in forwarded:
            headers = {"X-Forwarded-For": value} if value else {}
            response = await client.get("/p/" + secrets.token_urlsafe(32), headers=headers)
            found.append(response.status)
    return found


async def test_behind_a_trusted_proxy_each_recipient_has_their_own_limit(
        services: Services) -> None:
    one, two = "198.51.100.1", "198.51.100.2"
    got = await statuses(services, "127.0.0.1/32", [one] * PER_IP + [one, two, f"{two}, {one}"])
    # The fourth from `one` is refused; `two`'s first is not. In "two, one" the proxy
    # appended `one` (whom it saw) and `two` was written by that client: it counts as `one`.
    assert got == [404] * PER_IP + [429, 404, 429]


async def test_without_a_trusted_proxy_the_header_changes_nothing(services: Services) -> None:
    got = await statuses(services, "", ["198.51.100.1", "198.51.100.2", "198.51.100.3", None])
    assert got == [404] * PER_IP + [429]  # all one address: the peer's


async def test_a_proxy_not_listed_is_not_believed(services: Services) -> None:
    got = await statuses(services, "10.0.0.0/8", ["198.51.100.1", "198.51.100.2",
                                                  "198.51.100.3", "198.51.100.4"])
    assert got == [404] * PER_IP + [429]


async def test_an_ipv6_zone_does_not_make_a_new_address(services: Services) -> None:
    # "2001:db8::7%a" and "2001:db8::7%b" are one client: the zone (free text) is dropped,
    # so it neither opens a fresh rate-limit bucket nor reaches the download records.
    zoned = [f"2001:db8::7%{n}-<script>" for n in range(PER_IP + 1)]
    got = await statuses(services, "127.0.0.1/32", zoned)
    assert got == [404] * PER_IP + [429]
