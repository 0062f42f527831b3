"""The base of every fake service the tests run: an aiohttp application on 127.0.0.1 that
records each request it is sent (method, path, query, headers; never a body, which the
fake's own handler reads), on port 0 or a given one, and can come back on the same port after
:meth:`FakeServer.close` (the service back up)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Self

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Request:
    """One request a fake was sent, as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeServer:
    """Subclasses add their routes to :attr:`app` (in ``__init__``), then ``await start()``.
    ``record=False`` keeps nothing (for benchmarks that send many requests)."""

    def __init__(self, *, record: bool = True, client_max_size: int = 1024 ** 2,
                 tls: bool = False) -> None:
        self.record = record
        self.tls = tls  # https with tests/support/tls.py's certificate for 127.0.0.1
        self.requests: list[Request] = []
        self.app = web.Application(client_max_size=client_max_size,
                                   middlewares=[self._recording])
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _recording(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.record:
            self.requests.append(Request(request.method, request.path, dict(request.query),
                                         dict(request.headers)))
        return await handler(request)

    async def start(self, port: int = 0, *, backlog: int = 128) -> Self:
        # As aiohttp's TestServer: a handler is cancelled when its client goes away.
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        context = None
        if self.tls:
            from tests.support.tls import server_context
            context = server_context()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=backlog,
                           ssl_context=context)
        await site.start()
        server = site._server  # the listening socket, to learn the port given
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        return self

    async def restart(self) -> None:
        """Serve again on the same port after :meth:`close`."""
        assert self.port is not None
        await self.start(self.port)

    @property
    def url(self) -> str:
        assert self.port is not None, "not started"
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
