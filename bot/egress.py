"""Where Safe Haven may connect on a platform's word: the rule alone, with no I/O.

Slack and Teams name URLs in what they send: a Slack file's ``url_private``, a Teams
attachment's ``downloadUrl``, the ``uploadUrl`` of an accepted file consent card, the
``serviceUrl`` replies are posted to. Each is used only when its host is

- one of that platform's own hosts (:data:`PLATFORM_HOSTS`, https only), or
- a host the operator named: ``SAFEHAVEN_ALLOWED_FETCH_HOSTS`` or the host of a configured
  API URL such as ``SLACK_API_URL`` (http or https: proxies and test fakes);

and a connection only goes to a public address, unless the operator named that host (so an
internal service on 127.0.0.1, 10.x or 169.254.169.254 is reached only when named).
:mod:`channels.egress` applies this to real connections, again after every redirect.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


class Destination(StrEnum):
    """What a URL is used for; each has its own list of platform hosts."""

    SLACK_FILES = "Slack file download"
    TEAMS_CONNECTOR = "Teams Bot Connector (serviceUrl)"
    TEAMS_FILES = "Teams file transfer (downloadUrl, uploadUrl)"


@dataclass(frozen=True)
class HostRule:
    """A host (``*.example.com``: any subdomain of it) and, optionally, one port."""

    host: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        host = normalise_host(host)
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# The hosts each platform itself sends, checked against Microsoft's and Slack's documentation:
# - Slack serves ``url_private`` / ``url_private_download`` from files.slack.com.
# - Teams posts from the Bot Connector at smba.trafficmanager.net (public cloud) and the
#   smba.infra.* hosts of the US government clouds.
# - Teams files sent to a bot live in the sender's OneDrive for Business: ``downloadUrl`` and
#   the file consent ``uploadUrl`` are on <tenant>-my.sharepoint.com (bots cannot send or
#   receive files in GCC High or DoD, so their SharePoint hosts are not listed).
PLATFORM_HOSTS: dict[Destination, tuple[HostRule, ...]] = {
    Destination.SLACK_FILES: (HostRule("files.slack.com", 443),),
    Destination.TEAMS_CONNECTOR: (
        HostRule("smba.trafficmanager.net", 443),
        HostRule("smba.infra.gcc.teams.microsoft.com", 443),
        HostRule("smba.infra.gov.teams.microsoft.us", 443),
        HostRule("smba.infra.dod.teams.microsoft.us", 443),
    ),
    Destination.TEAMS_FILES: (HostRule("*.sharepoint.com", 443),),
}


def normalise_host(host: str) -> str:
    """Lower case, without a trailing dot or IPv6 brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def as_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(normalise_host(host))
    except ValueError:
        return None


def is_public_address(address: IPAddress) -> bool:
    """A globally routable unicast address: not loopback, private, link-local, shared,
    unspecified, multicast or reserved (also when wrapped in an IPv6 form)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public_address(embedded)
        if address.teredo is not None or address in _NAT64:
            return False
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
        or address.is_loopback or address.is_link_local or address.is_private)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: this machine."""
    address = as_address(host)
    return normalise_host(host) == "localhost" or (address is not None and address.is_loopback)


def service_url_problem(variable: str, url: str, *, production: bool) -> str | None:
    """Why ``url`` may not be the base URL of a service Safe Haven sends credentials to
    (``SLACK_API_URL``, ``TWILIO_API_URL``, ``TEAMS_LOGIN_URL``), a sentence naming
    ``variable``; None when it may. https://, or plain http to this machine outside
    production (a test server); never the URL's user, password or path."""
    try:
        parts = urlsplit(url.strip())
        host, scheme = parts.hostname or "", parts.scheme.lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return f"{variable} is not a valid URL; set an https:// URL."
    if scheme not in DEFAULT_PORTS or not host:
        return f"{variable} is not an http(s) URL with a host; set an https:// URL."
    if scheme == "https":
        return None
    if production:
        return (f"{variable} is http://{host}: plain http is refused when "
                "SAFEHAVEN_ENV=production (the service's credentials would cross the network "
                "readable); set an https:// URL, or leave it unset for the service's own.")
    if not is_loopback_host(host):
        return (f"{variable} is http://{host}: plain http only to this machine (127.0.0.1, "
                "::1, localhost: a test server); set an https:// URL.")
    return None


def parse_host_rule(text: str) -> HostRule:
    """``host``, ``host:port``, ``*.domain``, ``[v6]:port``; ValueError saying what is wrong."""
    entry = text.strip()
    host, port_text = entry, ""
    if entry.startswith("["):
        close = entry.find("]")
        if close < 0:
            raise ValueError(f"{entry!r} has no closing ]")
        host, rest = entry[1:close], entry[close + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{entry!r} is not [address]:port")
        port_text = rest[1:]
    elif entry.count(":") == 1:
        host, port_text = entry.split(":")
    host = normalise_host(host)
    port: int | None = None
    if port_text or entry.endswith(":"):
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{entry!r} has no port number 1-65535 after the colon")
        port = int(port_text)
    if as_address(host) is not None:
        return HostRule(str(as_address(host)), port)
    name = host[2:] if host.startswith("*.") else host
    labels = name.split(".")
    if not name or not all(
            label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii()
            and not label.startswith("-") and not label.endswith("-") for label in labels):
        raise ValueError(f"{entry!r} is not a host name, an IP address or *.domain")
    if host.startswith("*.") and len(labels) < 2:
        raise ValueError(f"{entry!r} would allow a whole top-level domain")
    return HostRule(host, port)


def parse_host_rules(text: str) -> tuple[HostRule, ...]:
    """A comma-separated list, as ``SAFEHAVEN_ALLOWED_FETCH_HOSTS`` holds it."""
    return tuple(parse_host_rule(part) for part in text.split(",") if part.strip())


def rule_for_url(scheme: str, host: str, port: int | None) -> HostRule:
    """The host and port a configured API URL names (its default port when it has none)."""
    resolved = port if port is not None else DEFAULT_PORTS.get(scheme.lower())
    address = as_address(host)
    return HostRule(str(address) if address else normalise_host(host), resolved)


@dataclass(frozen=True)
class EgressPolicy:
    """The allow-list for one platform: its own hosts plus the operator's."""

    named: tuple[HostRule, ...] = ()

    @classmethod
    def of(cls, *groups: Iterable[HostRule]) -> EgressPolicy:
        return cls(named=tuple(rule for group in groups for rule in group))

    def is_named(self, host: str, port: int) -> bool:
        address = as_address(host)
        shown = str(address) if address is not None else host
        return any(rule.matches(shown, port) for rule in self.named)

    def refusal(self, destination: Destination, *, scheme: str, host: str,
                port: int | None) -> str | None:
        """Why a URL with these parts may not be used for ``destination`` (None: it may)."""
        scheme = scheme.lower()
        if scheme not in DEFAULT_PORTS or not host:
            return "it is not an http(s) URL with a host"
        actual = port if port is not None else DEFAULT_PORTS[scheme]
        if self.is_named(host, actual):
            return None
        address = as_address(host)
        if address is not None:
            return f"{address} is an address, not a {destination} host"
        if scheme != "https":
            return f"{normalise_host(host)} is reached over http, not https"
        if not any(rule.matches(host, actual) for rule in PLATFORM_HOSTS[destination]):
            return f"{normalise_host(host)} is not a {destination} host"
        return None

    def address_allowed(self, host: str, port: int, address: IPAddress) -> bool:
        """Whether a connection for ``host:port`` may go to ``address``."""
        return self.is_named(host, port) or is_public_address(address)
