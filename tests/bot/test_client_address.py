"""The one rule for a request's client address (bot/client_address.py): the peer, unless a
trusted proxy connected, then the right-most untrusted X-Forwarded-For entry. What the
running server does with it through a real nginx: tests/ops/test_nginx_proxy.py."""

from __future__ import annotations

import pytest

from bot.client_address import client_address, parse_trusted_proxies
from bot.settings import SettingsError, load_settings

NGINX = parse_trusted_proxies("127.0.0.1/32")
CHAIN = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8, ::1")


def test_no_trusted_proxy_ignores_the_header() -> None:
    assert client_address("192.0.2.7", ["203.0.113.9"], ()) == "192.0.2.7"


def test_an_untrusted_peer_cannot_name_another_client() -> None:
    assert client_address("192.0.2.7", ["203.0.113.9"], NGINX) == "192.0.2.7"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_address("127.0.0.1", ["198.51.100.4"], NGINX) == "198.51.100.4"
    assert client_address("127.0.0.1", [], NGINX) == "127.0.0.1"  # no header: the proxy


def test_what_the_client_wrote_left_of_the_proxy_entry_is_not_believed() -> None:
    # The client sent "X-Forwarded-For: 203.0.113.9"; nginx appended its real address.
    assert client_address("127.0.0.1", ["203.0.113.9, 198.51.100.4"], NGINX) == "198.51.100.4"
    # ... also when it claimed a trusted address itself.
    assert client_address("127.0.0.1", ["127.0.0.1, 198.51.100.4"], NGINX) == "198.51.100.4"
    # Several header lines are read in order, as one list.
    assert client_address("127.0.0.1", ["203.0.113.9", "198.51.100.4"], NGINX) \
        == "198.51.100.4"


def test_a_chain_of_trusted_proxies_is_walked() -> None:
    assert client_address("::1", ["198.51.100.4, 10.1.2.3, 127.0.0.1"], CHAIN) == "198.51.100.4"
    assert client_address("::ffff:127.0.0.1", ["198.51.100.4"], NGINX) == "198.51.100.4"
    assert client_address("127.0.0.1", ["10.1.2.3, 127.0.0.1"], CHAIN) == "10.1.2.3"


def test_an_unreadable_entry_stops_the_walk_at_the_last_trusted_address() -> None:
    assert client_address("127.0.0.1", ["<script>, 10.1.2.3"], CHAIN) == "10.1.2.3"
    assert client_address("127.0.0.1", ["unknown"], NGINX) == "127.0.0.1"
    assert client_address("127.0.0.1", ["[2001:db8::5]:443"], NGINX) == "2001:db8::5"
    assert client_address("127.0.0.1", ["198.51.100.4:5123"], NGINX) == "198.51.100.4"
    assert client_address(None, ["198.51.100.4"], NGINX) == "unknown"


def test_the_setting() -> None:
    base = {"SAFEHAVEN_VAR_DIR": "/tmp/sh-client-address-var"}
    assert load_settings(base).trusted_proxies == ()
    got = load_settings({**base, "SAFEHAVEN_TRUSTED_PROXIES": "127.0.0.1/32, 10.0.0.0/8"})
    assert [str(n) for n in got.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8"]
    with pytest.raises(SettingsError, match="SAFEHAVEN_TRUSTED_PROXIES: 'nginx' is not"):
        load_settings({**base, "SAFEHAVEN_TRUSTED_PROXIES": "127.0.0.1, nginx"})


def test_an_ipv6_zone_is_dropped() -> None:
    # ip_address() takes "::1%<any text>": only the address is kept, never the text.
    assert client_address("127.0.0.1", ["2001:db8::7%<script>x"], NGINX) == "2001:db8::7"
    assert client_address("127.0.0.1", ["[fe80::1%eth0]:443"], NGINX) == "fe80::1"
    assert client_address("::1%lo", ["198.51.100.4"], CHAIN) == "198.51.100.4"
    assert client_address("fe80::1%eth0", [], ()) == "fe80::1"
