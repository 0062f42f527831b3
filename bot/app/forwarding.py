"""The client's address on every request: ``request.remote`` becomes what
:func:`bot.client_address.client_address` decides (the peer, or the client a trusted proxy
names in ``X-Forwarded-For``), so everything downstream (the portal's download records and
per-address rate limits) reads one answer. Installed by :func:`bot.app.web.create_app`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from bot.client_address import Network, client_address

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, trusted: Sequence[Network]) -> None:
    """Put the middleware first (outermost), ahead of any a channel adds. Nothing when no
    proxy is trusted: then ``request.remote`` is the peer already."""
    if not trusted:
        return
    networks = tuple(trusted)

    @web.middleware
    async def forwarded_client(request: web.Request, handler: Handler) -> web.StreamResponse:
        remote = client_address(request.remote, request.headers.getall("X-Forwarded-For", ()),
                                networks)
        if remote != request.remote:
            request = request.clone(remote=remote)
        return await handler(request)

    app.middlewares.insert(0, forwarded_client)
