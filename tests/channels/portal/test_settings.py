"""SAFEHAVEN_PUBLIC_URL: where portal links point (https only in production)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings
from bot.vault import generate_key


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("value", ["http://safehaven.example.gov.uk", "HTTP://x.example", ""])
def test_production_refuses_a_public_url_that_is_not_https(value: str) -> None:
    env = {"SAFEHAVEN_ENV": "production", "SAFEHAVEN_SECRET_KEY": generate_key(),
           "SAFEHAVEN_PUBLIC_URL": value}
    with pytest.raises(SettingsError, match=r"SAFEHAVEN_PUBLIC_URL .* must be the https://"):
        load_settings(env)
    env["SAFEHAVEN_PUBLIC_URL"] = "https://safehaven.example.gov.uk/share/"
    assert load_settings(env).public_url == "https://safehaven.example.gov.uk/share"


def test_serve_in_production_with_an_http_public_url_stops_and_serves_nothing(
        tmp_path: Path) -> None:
    """The attack: an operator (or a copied .env) runs production with an http:// public
    URL, so every portal link and Twilio webhook would travel in clear. Everything else
    here is a valid production configuration (Twilio instead of the console transport), so
    without the check ``serve`` would start listening."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SAFEHAVEN_", "TWILIO_", "SLACK_", "Microsoft"))}
    env.update(SAFEHAVEN_ENV="production", SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_PORT=str(port),
               SAFEHAVEN_PUBLIC_URL="http://safehaven.example.gov.uk",
               TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="not-a-real-token",
               TWILIO_FROM_NUMBER="+447700900123",
               TWILIO_API_URL=f"http://127.0.0.1:{_free_port()}")
    proc = subprocess.Popen([sys.executable, "-m", "bot.app.cli", "serve", "--no-scheduler"],
                            env=env, cwd=Path(__file__).resolve().parents[3], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"serve kept running with an http public URL: {out}{err}")
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("safehaven: SAFEHAVEN_PUBLIC_URL is 'http://safehaven.example")
    assert "https://" in lines[0]
    assert "serving" not in out and "Recipient portal" not in out
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
