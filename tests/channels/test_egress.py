"""The checked fetch shared by Slack and Teams: a permitted name that resolves to an internal
address is refused when the connection is made (DNS answers can change after the check)."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.egress import Destination, EgressPolicy, parse_host_rules
from channels.egress import CheckedResolver, EgressRefused, check_url, checked_get


class StubResolver(AbstractResolver):
    """DNS as an attacker who controls a name's answers would have it."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        return [{"hostname": host, "host": a, "port": port, "family": family, "proto": 0,
                 "flags": 0} for a in self.answers[host]]

    async def close(self) -> None:
        return None


async def test_a_platform_name_resolving_to_an_internal_address_is_refused() -> None:
    stub = StubResolver({"contoso-my.sharepoint.com": ["127.0.0.1"]})
    policy = EgressPolicy()
    connector = aiohttp.TCPConnector(resolver=CheckedResolver(policy, stub))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(EgressRefused, match="not public"):
            async with checked_get(session, policy, Destination.TEAMS_FILES,
                                   "https://contoso-my.sharepoint.com/download.aspx"):
                pass
    assert stub.asked == ["contoso-my.sharepoint.com"]


async def test_only_public_answers_are_kept_unless_the_host_is_named() -> None:
    stub = StubResolver({"files.slack.com": ["10.0.0.7", "52.1.2.3"],
                         "proxy.local": ["10.0.0.9"]})
    resolver = CheckedResolver(EgressPolicy(named=parse_host_rules("proxy.local:3128")), stub)
    assert [r["host"] for r in await resolver.resolve("files.slack.com", 443)] == ["52.1.2.3"]
    assert [r["host"] for r in await resolver.resolve("proxy.local", 3128)] == ["10.0.0.9"]
    with pytest.raises(EgressRefused):
        await resolver.resolve("proxy.local", 8080)


@pytest.mark.parametrize("url", [
    "https://user:pw@contoso.sharepoint.com/x",
    "https://contoso.sharepoint.com@127.0.0.1/x",
    "/relative/path",
    "https://127.1/x",
    "https://2130706433/x",
])
def test_urls_that_would_land_elsewhere_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused):
        check_url(EgressPolicy(), Destination.TEAMS_FILES, url)
