"""SAFEHAVEN_PUBLIC_URL: where portal links point."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings


def test_public_url_defaults_to_host_and_port() -> None:
    s = load_settings({"SAFEHAVEN_HOST": "127.0.0.1", "SAFEHAVEN_PORT": "8080"})
    assert s.public_url == "http://127.0.0.1:8080"


def test_public_url_is_read_and_trimmed() -> None:
    s = load_settings({"SAFEHAVEN_PUBLIC_URL": " https://safehaven.example.gov.uk/share/ "})
    assert s.public_url == "https://safehaven.example.gov.uk/share"


@pytest.mark.parametrize("value", ["safehaven.example", "ftp://x.example", "https://",
                                   "https://x.example/?a=1"])
def test_bad_public_url_says_what_to_set(value: str) -> None:
    with pytest.raises(SettingsError, match="SAFEHAVEN_PUBLIC_URL"):
        load_settings({"SAFEHAVEN_PUBLIC_URL": value})
