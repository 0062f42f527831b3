"""GET /metrics through the real aiohttp application: 404 unless SAFEHAVEN_METRICS=on; when
on, the Prometheus text parses, a Slack transfer moves the database-wide gauges (checked
against the database itself), a forged Slack request counts one authentication failure for
``channel="slack"``, the turn and acknowledgement histograms have observations, and no label
holds anything but a word from a fixed set (no email, phone, name, user id or reference)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bot.app import metrics
from bot.app.web import create_app
from bot.near_misses import WebhookChannel
from bot.observations import NoObservations, UserChannel
from bot.settings import LogFormat, Settings, SettingsError, load_settings
from bot.statuses import (
    ApprovalStatus,
    EffectStatus,
    SendKind,
    SendStatus,
    TransferStatus,
)
from bot.vault import generate_key
from handlers.monitoring import OTHER
from handlers.services import Services
from store.db import Database
from store.models import Approval, PasswordSend, Transfer
from tests.channels.slack.test_flow import RECIPIENT, answer_up_to_confirm, reference_in
from tests.support.core import PDF, Clock
from tests.support.slack import Workspace, message_text

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

# Every label a metric may carry, and every value it may take: words of the enums.
ALLOWED_LABELS: dict[str, set[str]] = {
    "status": {*TransferStatus, *SendStatus, *EffectStatus, OTHER},
    "kind": {*SendKind, OTHER},
    "channel": {*WebhookChannel, *UserChannel},
    "status_class": set(metrics.STATUS_CLASSES),
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with SAFEHAVEN_METRICS on (the workspace app is built from them)."""
    return replace(settings, metrics=True)


async def scrape(client: TestClient[Any, Any]) -> tuple[str, Samples]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def check_labels(text: str) -> None:
    """Every label name is known and every value is an enum's word (``le``: a bucket)."""
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("safehaven_"), family.name
        for sample in family.samples:
            for name, label in sample.labels.items():
                if name == "le":
                    assert label == "+Inf" or float(label) > 0
                    continue
                assert name in ALLOWED_LABELS, (family.name, name)
                assert label in ALLOWED_LABELS[name], (family.name, name, label)


async def db_counts(svc: Services) -> tuple[Counter[str], int, Counter[tuple[str, str]]]:
    async with svc.db.read() as session:
        transfers = Counter({s: n for s, n in await session.execute(
            select(Transfer.status, func.count()).group_by(Transfer.status))})
        waiting = int(await session.scalar(select(func.count()).select_from(Approval)
                                           .where(Approval.status == ApprovalStatus.PENDING))
                      or 0)
        sends = Counter({(k, s): n for k, s, n in await session.execute(
            select(PasswordSend.kind, PasswordSend.status, func.count())
            .group_by(PasswordSend.kind, PasswordSend.status))})
    return transfers, waiting, sends


def assert_gauges_match(samples: Samples, transfers: Counter[str], waiting: int,
                        sends: Counter[tuple[str, str]]) -> None:
    for status in TransferStatus:
        assert value(samples, "safehaven_transfers", status=status) == transfers[status], status
    assert value(samples, "safehaven_approvals_waiting") == waiting
    for kind in SendKind:
        for send_status in SendStatus:
            assert value(samples, "safehaven_password_sends", kind=kind, status=send_status) \
                == sends[(kind, send_status)], (kind, send_status)


async def test_metrics_follow_a_slack_transfer(workspace: Workspace, clock: Clock) -> None:
    client, svc = workspace.client, workspace.svc
    text, before = await scrape(client)
    check_labels(text)
    assert value(before, "safehaven_database_up") == 1
    assert all(value(before, "safehaven_transfers", status=s) == 0 for s in TransferStatus)
    assert value(before, "safehaven_webhook_auth_failures_total", channel="slack") == 0
    assert value(before, "safehaven_turn_duration_seconds_count", channel="slack") == 0

    alice = workspace.user("UALICE01")
    await alice.send_files(("Julia Smith referral.pdf", PDF))
    reference = reference_in(message_text(alice.last))
    await answer_up_to_confirm(alice, classification="RESTRICTED",
                               password="SMS once receipt is confirmed")
    await alice.click("Confirm and send")
    assert "needs authorising" in alice.text

    clock.advance(hours=2)  # the approval request has waited two hours
    text, waiting = await scrape(client)
    check_labels(text)
    assert_gauges_match(waiting, *await db_counts(svc))
    assert value(waiting, "safehaven_transfers", status="awaiting_approval") == 1
    assert value(waiting, "safehaven_approvals_waiting") == 1
    assert value(waiting, "safehaven_approval_oldest_wait_seconds") == 2 * 3600
    # Every turn and every webhook answer was timed.
    assert value(waiting, "safehaven_turn_duration_seconds_count", channel="slack") >= 8
    assert value(waiting, "safehaven_turn_duration_seconds_sum", channel="slack") > 0
    acks = value(waiting, "safehaven_webhook_ack_duration_seconds_count",
                 channel="slack", status_class="2xx")
    assert acks >= 8
    assert value(waiting, "safehaven_webhook_ack_duration_seconds_bucket", channel="slack",
                 status_class="2xx", le="+Inf") == acks

    # A forged request: refused, counted once for Slack, timed as a 4xx answer.
    status, _ = await workspace.post(workspace.event_body(alice.message_event("hello")),
                                     "application/json", sign=False,
                                     headers={"X-Slack-Request-Timestamp": "1",
                                              "X-Slack-Signature": "v0=00ff"})
    assert status == 401
    _, forged = await scrape(client)
    assert value(forged, "safehaven_webhook_auth_failures_total", channel="slack") == 1
    assert value(forged, "safehaven_webhook_auth_failures_total", channel="teams") == 0
    assert value(forged, "safehaven_webhook_ack_duration_seconds_count", channel="slack",
                 status_class="4xx") == 1
    # Twilio is not set up here: a request to its path has no route, and is not timed.
    assert (await client.post("/twilio/sms/status", data=b"")).status == 404
    _, no_route = await scrape(client)
    assert not [key for key in no_route if key[0].startswith("safehaven_webhook_ack")
                and ("channel", "twilio") in key[1] and ("status_class", "4xx") in key[1]]

    await workspace.user("UBOSS01").click("Approve")
    text, approved = await scrape(client)
    check_labels(text)
    transfers, now_waiting, sends = await db_counts(svc)
    assert_gauges_match(approved, transfers, now_waiting, sends)
    assert value(approved, "safehaven_transfers", status="ready") == 1
    assert value(approved, "safehaven_transfers", status="awaiting_approval") == 0
    assert value(approved, "safehaven_approvals_waiting") == 0
    assert value(approved, "safehaven_approval_oldest_wait_seconds") == 0
    assert value(approved, "safehaven_password_sends", kind="sms", status="waiting") == 1
    # The recipient confirms receipt: the SMS goes, and the gauge says how it went.
    await alice.say(f"received {reference}")
    _, received = await scrape(client)
    assert_gauges_match(received, *await db_counts(svc))
    assert value(received, "safehaven_password_sends", kind="sms", status="waiting") == 0
    # Whatever the flow typed, nothing personal or identifying is anywhere in the text.
    for secret in (RECIPIENT["email"], RECIPIENT["name"], "07911", "447911", "Julia",
                   reference, "UALICE01", "UBOSS01", "nhs"):
        assert secret.lower() not in text.lower(), secret
    assert not re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", text)


async def test_metrics_are_404_unless_switched_on(services: Services) -> None:
    services.settings = replace(services.settings, metrics=False)
    async with TestClient(TestServer(create_app(services, migrate=True, scheduler=False),
                                     host="127.0.0.1")) as client:
        response = await client.get("/metrics")
        assert response.status == 404
        assert (await client.get("/healthz")).status == 200
    assert isinstance(services.observations, NoObservations)  # turns are not timed


async def test_an_unreachable_database_says_so_and_keeps_the_process_metrics(
        services: Services, tmp_path: Path) -> None:
    async with TestClient(TestServer(create_app(services, migrate=True, scheduler=False),
                                     host="127.0.0.1")) as client:
        await services.db.close()
        services.db = Database(f"sqlite+aiosqlite:///{tmp_path}/no/such/folder/x.db")
        text, samples = await scrape(client)
        check_labels(text)
        assert value(samples, "safehaven_database_up") == 0
        assert ("safehaven_transfers", (("status", "ready"),)) not in samples
        assert value(samples, "safehaven_webhook_auth_failures_total", channel="slack") == 0


def test_webhook_paths_are_the_channels_own() -> None:
    from channels.slack.http import PATH as SLACK_PATH
    from channels.teams.app import ROUTE as TEAMS_ROUTE

    assert metrics.webhook_channel(SLACK_PATH) == WebhookChannel.SLACK
    assert metrics.webhook_channel(TEAMS_ROUTE) == WebhookChannel.TEAMS
    source = Path(__file__).resolve().parents[2] / "channels" / "twilio" / "webhooks.py"
    routes = re.findall(r'add_post\("([^"]+)"', source.read_text(encoding="utf-8"))
    assert routes and all(metrics.webhook_channel(r) == WebhookChannel.TWILIO for r in routes)
    assert metrics.webhook_channel("/p/abc") is None
    assert metrics.webhook_channel(metrics.PATH) is None


def test_settings_read_metrics_and_log_format() -> None:
    base = {"SAFEHAVEN_VAR_DIR": "/tmp/safehaven-settings-test"}
    default = load_settings(base)
    assert default.metrics is False and default.log_format == LogFormat.TEXT
    on = load_settings({**base, "SAFEHAVEN_METRICS": "on", "SAFEHAVEN_LOG_FORMAT": "JSON"})
    assert on.metrics is True and on.log_format == LogFormat.JSON
    assert load_settings({**base, "SAFEHAVEN_METRICS": "off"}).metrics is False
    with pytest.raises(SettingsError, match="SAFEHAVEN_METRICS is 'maybe'; set it to on or off"):
        load_settings({**base, "SAFEHAVEN_METRICS": "maybe"})
    with pytest.raises(SettingsError, match="SAFEHAVEN_LOG_FORMAT is 'xml'; set it to text"):
        load_settings({**base, "SAFEHAVEN_LOG_FORMAT": "xml"})


def test_serve_refuses_a_bad_metrics_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_METRICS="yes please")
    result = subprocess.run([sys.executable, "-m", "bot.app.cli", "serve"], env=env,
                            text=True, capture_output=True, timeout=120, check=False,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 2
    assert "SAFEHAVEN_METRICS is 'yes please'; set it to on or off" in result.stderr
