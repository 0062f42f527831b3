"""The allow-list rule on its own: which hosts, ports and addresses a platform's URL may use."""

from __future__ import annotations

import ipaddress

import pytest

from bot.egress import (
    Destination,
    EgressPolicy,
    HostRule,
    is_public_address,
    parse_host_rules,
    service_url_problem,
)
from bot.settings import SettingsError, load_settings

TEAMS_FILES, CONNECTOR, SLACK = (Destination.TEAMS_FILES, Destination.TEAMS_CONNECTOR,
                                 Destination.SLACK_FILES)


def refusal(policy: EgressPolicy, destination: Destination, url: str) -> str | None:
    scheme, rest = url.split("://", 1)
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
    return policy.refusal(destination, scheme=scheme, host=host, port=int(port) if port else None)


@pytest.mark.parametrize(("destination", "url"), [
    (SLACK, "https://files.slack.com/files-pri/T1-F1/download/a.pdf"),
    (CONNECTOR, "https://smba.trafficmanager.net/emea/"),
    (CONNECTOR, "https://smba.infra.gcc.teams.microsoft.com/teams"),
    (TEAMS_FILES, "https://contoso-my.sharepoint.com/personal/a/_layouts/15/download.aspx"),
    (TEAMS_FILES, "https://CONTOSO.sharepoint.com./sites/x"),
])
def test_platform_hosts_are_allowed_over_https(destination: Destination, url: str) -> None:
    assert refusal(EgressPolicy(), destination, url) is None
    assert refusal(EgressPolicy(), destination, url.replace("https", "http", 1)) is not None


@pytest.mark.parametrize(("destination", "url"), [
    (SLACK, "https://slack.com.evil.example/x"),
    (SLACK, "https://files.slack.com:8443/x"),
    (SLACK, "https://smba.trafficmanager.net/x"),        # a Teams host is not a Slack one
    (CONNECTOR, "https://contoso.sharepoint.com/x"),     # nor a file host a connector
    (TEAMS_FILES, "https://sharepoint.com/x"),
    (TEAMS_FILES, "https://evilsharepoint.com/x"),
    (TEAMS_FILES, "https://contoso.sharepoint.com.evil.example/x"),
    (TEAMS_FILES, "https://127.0.0.1/x"),
    (TEAMS_FILES, "https://169.254.169.254/latest/meta-data"),
    (TEAMS_FILES, "https://[::1]/x"),
    (TEAMS_FILES, "https://8.8.8.8/x"),                  # an address is never a platform host
    (TEAMS_FILES, "file:///etc/passwd"),
])
def test_everything_else_is_refused(destination: Destination, url: str) -> None:
    assert refusal(EgressPolicy(), destination, url) is not None


def test_named_hosts_match_host_and_port_and_may_be_private() -> None:
    policy = EgressPolicy(named=parse_host_rules("127.0.0.1:9000, proxy.council.local, [::1]:80"))
    assert refusal(policy, TEAMS_FILES, "http://127.0.0.1:9000/x") is None
    assert refusal(policy, TEAMS_FILES, "http://127.0.0.1:9001/x") is not None
    assert refusal(policy, TEAMS_FILES, "http://127.0.0.2:9000/x") is not None
    assert refusal(policy, SLACK, "http://proxy.council.local:3128/x") is None
    assert policy.address_allowed("127.0.0.1", 9000, ipaddress.ip_address("127.0.0.1"))
    assert not policy.address_allowed("127.0.0.1", 9001, ipaddress.ip_address("127.0.0.1"))
    assert policy.address_allowed("proxy.council.local", 3128, ipaddress.ip_address("10.0.0.5"))
    assert policy.address_allowed("::1", 80, ipaddress.ip_address("::1"))
    # A platform host still resolves only to public addresses.
    assert not policy.address_allowed("contoso.sharepoint.com", 443,
                                      ipaddress.ip_address("10.0.0.5"))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "233.252.0.1", "240.0.0.1", "255.255.255.255", "::1", "::",
    "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1",
    "2001:0::1",
])
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "52.112.0.1", "2603:1063::1"])
def test_public_addresses_are(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_the_setting_is_read_and_bad_entries_name_it() -> None:
    settings = load_settings({"SAFEHAVEN_ALLOWED_FETCH_HOSTS": "Proxy.Local:8080,*.corp.example"})
    assert settings.allowed_fetch_hosts == (HostRule("proxy.local", 8080),
                                            HostRule("*.corp.example"))
    assert load_settings({}).allowed_fetch_hosts == ()
    for bad in ("http://proxy.local", "proxy.local:", "proxy.local:99999", "*.com",
                "a b", "[::1", "host/path"):
        with pytest.raises(SettingsError, match="SAFEHAVEN_ALLOWED_FETCH_HOSTS"):
            load_settings({"SAFEHAVEN_ALLOWED_FETCH_HOSTS": bad})


def test_a_service_url_is_https_or_plain_http_to_this_machine_outside_production() -> None:
    for url in ("https://api.twilio.com", "https://10.0.0.5:8443/x"):
        assert service_url_problem("V", url, production=True) is None
    for url in ("http://127.0.0.1:9", "http://[::1]:80/api/", "http://localhost"):
        assert service_url_problem("V", url, production=False) is None
        assert "refused when SAFEHAVEN_ENV=production" in str(
            service_url_problem("V", url, production=True))
    for url in ("http://login.example", "http://10.0.0.5", "http://127.0.0.1.example"):
        assert "only to this machine" in str(service_url_problem("V", url, production=False))
    assert service_url_problem("V", "http://u:S3CRET@127.0.0.1:x", production=False) \
        == "V is not a valid URL; set an https:// URL."
    assert "not an http(s) URL" in str(service_url_problem("V", "ftp://h", production=False))
