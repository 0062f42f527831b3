"""HTTP on a platform's word, held to the allow-list of :mod:`bot.egress`.

Shared by the Slack and Teams channels (a channel never imports another):

- :func:`check_url` refuses a URL before anything is sent, parsed by yarl as aiohttp will;
- :func:`checked_connector` gives a session a resolver that drops every address the rule
  forbids, so a permitted name that resolves to 127.0.0.1 (or changes its answer between the
  check and the connection) is still refused when the connection is made;
- :func:`checked_get` follows redirects itself, checking every hop, and sends the caller's
  headers (a bot token) only to the origin of the first URL.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from bot.egress import Destination, EgressPolicy

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)


class EgressRefused(OSError):
    """A URL or address the allow-list does not permit; the message is safe to log."""


def check_url(policy: EgressPolicy, destination: Destination, url: str | URL) -> URL:
    """``url`` parsed, if it may be used for ``destination``; else :class:`EgressRefused`."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        host = parsed.raw_host or ""
        port = parsed.explicit_port
    except (ValueError, TypeError):
        raise EgressRefused("not a URL") from None
    if not parsed.is_absolute():
        raise EgressRefused("not an absolute URL")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise EgressRefused("a URL with a user name or password")
    reason = policy.refusal(destination, scheme=parsed.scheme, host=host, port=port)
    if reason is not None:
        raise EgressRefused(reason)
    return parsed


class CheckedResolver(AbstractResolver):
    """The default resolver, keeping only addresses the policy allows for the host."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        kept = [r for r in found
                if self.policy.address_allowed(host, port, ipaddress.ip_address(r["host"]))]
        if not kept:
            raise EgressRefused(f"{host} resolves only to addresses that are not public")
        return kept

    async def close(self) -> None:
        await self.inner.close()


def checked_connector(policy: EgressPolicy) -> aiohttp.TCPConnector:
    """A connector for a session that connects on a platform's word (call in the loop)."""
    return aiohttp.TCPConnector(resolver=CheckedResolver(policy))


def refusal_in(exc: BaseException) -> EgressRefused | None:
    """The :class:`EgressRefused` a client error carries (aiohttp wraps resolver errors)."""
    if isinstance(exc, EgressRefused):
        return exc
    inner = getattr(exc, "os_error", None)
    return inner if isinstance(inner, EgressRefused) else None


def _origin(url: URL) -> tuple[str, str, int | None]:
    return url.scheme, (url.raw_host or "").lower(), url.port


@asynccontextmanager
async def checked_get(session: aiohttp.ClientSession, policy: EgressPolicy,
                      destination: Destination, url: str, *,
                      headers: Mapping[str, str] | None = None,
                      **options: Any) -> AsyncIterator[aiohttp.ClientResponse]:
    """GET ``url`` and yield the final response; every redirect is checked like the first
    URL, ``headers`` go only to the first URL's origin. Raises :class:`EgressRefused`."""
    current = check_url(policy, destination, url)
    origin = _origin(current)
    for _ in range(MAX_REDIRECTS + 1):
        sent = dict(headers or {}) if _origin(current) == origin else {}
        try:
            response = await session.get(current, headers=sent, allow_redirects=False,
                                         **options)
        except aiohttp.ClientError as exc:
            refused = refusal_in(exc)
            if refused is not None:
                raise refused from None
            raise
        location = response.headers.get("Location")
        if response.status not in REDIRECTS or not location:
            try:
                yield response
            finally:
                response.release()
            return
        response.release()
        try:
            target = current.join(URL(location))
        except ValueError:
            raise EgressRefused("a redirect to something that is not a URL") from None
        current = check_url(policy, destination, target)
    raise EgressRefused(f"more than {MAX_REDIRECTS} redirects")
