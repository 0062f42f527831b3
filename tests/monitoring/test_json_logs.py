"""SAFEHAVEN_LOG_FORMAT=json through the real processes: ``safehaven share`` makes a transfer
(recipient name, email and phone, a password sent), then ``safehaven serve`` (Slack against
a fake Slack, metrics on) takes a signed Slack message, a forged one, a portal link and a
scrape. Every line either process logged, on stderr and in the log file, is one JSON object
with time, level, logger and message (and reference and event when the call had them), and
none holds the password, the recipient's name, email or phone, a file name or the portal
token. The scrape, from another process than the one that made the transfer, counts it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.vault import generate_key
from tests.support.core import PDF, SHARE_RECORD_FLAGS
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.slack import SECRET, signed

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"time", "level", "logger", "message", "reference", "event", "exception", "stack"}
NAME, EMAIL, PHONE = "Priya Shah", "priya.shah@nhs.net", "07911 123456"
SHARE = [*SHARE_RECORD_FLAGS, "--classification", "CONTROLLED", "--recipient-name", NAME,
         "--recipient-title", "Safeguarding Lead", "--recipient-org", "Northfield NHS Trust",
         "--recipient-email", EMAIL, "--recipient-phone", PHONE, "--purpose",
         "Strategy meeting about a child at risk", "--consent", "Only for the strategy meeting",
         "--password-via", "sms", "--sender", "console:alice"]
TOKEN_IN_LINK = "Zx9TokenThatMustNotBeLogged0123456789abcdefg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def json_lines(text: str, where: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{where}: not a JSON line: {line!r}") from None
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= set(record) <= FIELDS, record
        assert datetime.fromisoformat(record["time"]).utcoffset() is not None, record
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), record
        lines.append(record)
    return lines


async def wait_until_up(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("serve did not start")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_json_logs_from_share_and_serve_hold_no_secret(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "SLACK_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(var), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_LOG_FORMAT="json", SAFEHAVEN_LOG_LEVEL="DEBUG")
    document = tmp_path / "Julia Smith referral.pdf"
    document.write_bytes(PDF)
    shared = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot.app.cli", "share", str(document), *SHARE],
        env=env, cwd=ROOT, text=True, capture_output=True, timeout=300, check=False)
    assert shared.returncode == 0, shared.stdout + shared.stderr
    found = re.search(r"reference: (SH-\S+)", shared.stdout)
    assert found, shared.stdout
    reference = found.group(1)
    password = re.search(rf"password for {reference} is (\S+) \.",
                         (var / "outbox.log").read_text(encoding="utf-8"))
    assert password

    fake = await FakeSlack().start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve_env = dict(env, SAFEHAVEN_PORT=str(port), SAFEHAVEN_SCHEDULER="off",
                     SAFEHAVEN_METRICS="on", SLACK_BOT_TOKEN=TOKEN,
                     SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=f"{fake.url}/api/")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", "serve", cwd=ROOT, env=serve_env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    stderr_task = asyncio.ensure_future(process.stderr.read())
    try:
        await wait_until_up(base)
        message = json.dumps({
            "token": "legacy", "team_id": "T0001", "api_app_id": "A0001",
            "type": "event_callback", "event_id": "Ev00000001", "event_time": 1,
            "authorizations": [{"team_id": "T0001", "user_id": "UBOT0000", "is_bot": True}],
            "event": {"type": "message", "channel_type": "im", "channel": "DUALICE01",
                      "user": "UALICE01", "text": "help", "ts": "1700000000.000100"}})
        async with aiohttp.ClientSession() as session:
            async with session.post(base + "/slack/events", data=message.encode(), headers={
                    "Content-Type": "application/json", **signed(message)}) as response:
                assert response.status == 200
            async with session.post(base + "/slack/events", data=message.encode(), headers={
                    "Content-Type": "application/json", "X-Slack-Request-Timestamp": "1",
                    "X-Slack-Signature": "v0=00ff"}) as response:
                assert response.status == 401
            async with session.get(f"{base}/p/{TOKEN_IN_LINK}") as response:
                assert response.status == 404
            for _ in range(600):  # the Slack turn runs after the acknowledgement
                async with session.get(base + "/metrics") as response:
                    assert response.status == 200
                    scraped = samples(await response.text())
                if scraped[("safehaven_turn_duration_seconds_count",
                            (("channel", "slack"),))] >= 1:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the Slack turn was never timed")
        # The transfer another process made is counted: the gauges are the database's.
        assert scraped[("safehaven_transfers", (("status", "ready"),))] == 1
        assert scraped[("safehaven_webhook_auth_failures_total", (("channel", "slack"),))] == 1
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)
        await fake.close()
    served = json_lines((await stderr_task).decode(), "serve's stderr")
    logged = json_lines((var / "safehaven.log").read_text(encoding="utf-8"), "safehaven.log")

    assert served and any(line["logger"].startswith("channels.slack") for line in served)
    assert {"aiohttp.access"} <= {line["logger"] for line in logged}
    # The transfer's events carry its reference (share's effects, run through the outbox).
    events = {line["event"] for line in logged if line.get("reference") == reference
              and "event" in line}
    assert "submit" in events, events
    phone_digits = re.sub(r"\D", "", PHONE)
    for line in (*served, *logged):
        text = json.dumps(line, ensure_ascii=False)
        for secret in (password.group(1), NAME, EMAIL, "Julia", TOKEN_IN_LINK, "Strategy",
                       "7911123456", "447911", phone_digits):
            assert secret.lower() not in text.lower(), (secret, line)


def test_a_json_line_copies_only_its_own_fields() -> None:
    """A field passed in ``extra`` under any other name never reaches the line; a reference
    in the message is picked out; an error's traceback is kept."""
    from bot.app.logs import JsonFormatter

    logger = logging.getLogger("tests.json_line")
    formatter = JsonFormatter()
    record = logger.makeRecord(
        logger.name, logging.WARNING, __file__, 1, "sent %s to %s", ("SH-7K3Q-9F", "them"),
        None, extra={"email": EMAIL, "phone": PHONE, "event": "package"})
    line = json.loads(formatter.format(record))
    assert line["message"] == "sent SH-7K3Q-9F to them"
    assert line["reference"] == "SH-7K3Q-9F" and line["event"] == "package"
    assert set(line) == {"time", "level", "logger", "message", "reference", "event"}
    assert EMAIL not in json.dumps(line) and PHONE not in json.dumps(line)
    try:
        raise ValueError("broken")
    except ValueError:
        failed = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (),
                                   sys.exc_info(), extra={"reference": "SH-AAAA-22"})
    line = json.loads(formatter.format(failed))
    assert line["reference"] == "SH-AAAA-22" and "ValueError: broken" in line["exception"]
    assert "\n" not in formatter.format(failed)  # one line, whatever the traceback
