"""Who is at the other end of an HTTP request: the one rule for the client's address.

The peer (the TCP connection's other end) is the client, unless it is a proxy trusted by
``SAFEHAVEN_TRUSTED_PROXIES``: then the client is read from ``X-Forwarded-For``, from the
right (each proxy appends the address it was reached from), skipping the trusted proxies;
the first address not trusted is the client. Anything left of it was written by that client
and is never believed. With no trusted proxy (the default) the header is ignored. An IPv6
zone (``fe80::1%eth0``: free text after the ``%``) is dropped, so only an address is kept.

The composition root's middleware (``bot/app/web.py``) applies it to every request, so the
portal's download records and its per-address rate limits use this address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_trusted_proxies(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or networks (``127.0.0.1/32, 10.0.0.0/8, ::1``); raises
    ValueError naming the entry that is neither."""
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address):
        if found.ipv4_mapped is not None:
            return found.ipv4_mapped
        if found.scope_id is not None:  # fe80::1%<any text>: the text is the sender's
            return ipaddress.IPv6Address(found.packed)
    return found


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_address(peer: str | None, forwarded_for: Iterable[str],
                   trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, then the right-most
    ``X-Forwarded-For`` entry (``forwarded_for``: the header's values, in order) that is
    not a trusted proxy. When every entry is trusted, the left-most; when an entry cannot
    be read, the last trusted address before it (nothing further left is believed)."""
    if peer is None:
        return "unknown"
    current = _address(peer)
    if current is None:
        return peer
    if not trusted or not _trusted(current, trusted):
        return str(current)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)
