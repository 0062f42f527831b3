"""``GET /metrics`` in the Prometheus text format, when ``SAFEHAVEN_METRICS=on``.

Two kinds of numbers, and where they come from (``docs/operations.md``, Monitoring):

* **database-wide gauges**, read at each scrape with grouped counts
  (:func:`handlers.monitoring.backlog`): transfers by status, password sends by kind and
  status, outbox entries, approvals waiting and how long the oldest has waited. Every
  replica reports the same numbers; nothing is counted on a request's path.
* **this process's counters and histograms**, kept in memory since it started: forged
  webhook requests per channel (:meth:`bot.near_misses.ForgedRequests.totals`), how long
  conversation turns take (:class:`bot.observations.Observations`, fed by
  :func:`handlers.conversation.take_turn`) and how long the webhooks take to answer
  Slack, Teams and Twilio (the middleware here). Each ``serve`` replica has its own: let
  Prometheus scrape each replica and sum. The worker serves no HTTP and has none.

Every label value is a member of an enum (status, kind, channel, a status class such as
``2xx``): never a user id, a reference, a name, an address or a number. prometheus_client
is imported here only: handlers and the domain see the neutral hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bot.near_misses import ForgedRequests, WebhookChannel
from bot.observations import UserChannel
from handlers import monitoring
from handlers.services import Services

log = logging.getLogger(__name__)

PATH = "/metrics"
NAMESPACE = "safehaven"

# Where each channel's webhooks are mounted (channels/slack/http.py PATH, channels/teams/app.py
# ROUTE, channels/twilio/webhooks.py); kept as words here so this module does not import the
# channels' SDKs. tests/test_metrics.py checks them against the channels' own constants.
WEBHOOK_PATHS: tuple[tuple[str, WebhookChannel], ...] = (
    ("/slack/", WebhookChannel.SLACK),
    ("/api/messages", WebhookChannel.TEAMS),
    ("/twilio/", WebhookChannel.TWILIO),
)

# A turn may include judging files (up to 30 s) and packaging a small archive.
TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Slack wants an answer within 3 s; Teams and Twilio within 15 s.
ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def webhook_channel(path: str) -> WebhookChannel | None:
    """The channel whose webhook ``path`` is, None for any other path."""
    for prefix, channel in WEBHOOK_PATHS:
        if path.startswith(prefix):
            return channel
    return None


def status_class(status: int) -> str:
    return f"{min(max(status // 100, 1), 5)}xx"


class _ForgedRequestsCollector(Collector):
    """The process's forged-request totals as a counter, read when scraped."""

    def __init__(self, forged: ForgedRequests) -> None:
        self.forged = forged

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            f"{NAMESPACE}_webhook_auth_failures",
            "Webhook requests refused for failing their signature or token, by channel, "
            "since this process started", labels=["channel"])
        for channel, count in sorted(self.forged.totals().items()):
            family.add_metric([channel.value], count)
        yield family


class _Scrape(Collector):
    """One scrape: the process's registry, then the gauges read for this scrape."""

    def __init__(self, registry: CollectorRegistry, families: Iterable[Metric]) -> None:
        self.registry = registry
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from self.families


def backlog_families(backlog: monitoring.Backlog | None) -> list[Metric]:
    """The database-wide gauges (only ``database_up`` 0 when the database did not answer)."""
    up = GaugeMetricFamily(f"{NAMESPACE}_database_up",
                           "1 if the database answered this scrape's counts, else 0",
                           value=0 if backlog is None else 1)
    if backlog is None:
        return [up]
    transfers = GaugeMetricFamily(f"{NAMESPACE}_transfers",
                                  "Transfers in each status (whole database)",
                                  labels=["status"])
    for status, count in sorted(backlog.transfers.items()):
        transfers.add_metric([status], count)
    sends = GaugeMetricFamily(
        f"{NAMESPACE}_password_sends",
        "Out-of-band password sends by kind (sms, voice, heads-up) and status "
        "(delivered, failed, dead, due, ...) (whole database)", labels=["kind", "status"])
    for (kind, status), count in sorted(backlog.sends.items()):
        sends.add_metric([kind, status], count)
    outbox = GaugeMetricFamily(
        f"{NAMESPACE}_outbox_entries",
        "Outbox effects not yet done: pending, running, or failed after every retry "
        "(whole database)", labels=["status"])
    for status, count in sorted(backlog.outbox.items()):
        outbox.add_metric([status], count)
    return [
        up, transfers, sends, outbox,
        GaugeMetricFamily(f"{NAMESPACE}_approvals_waiting",
                          "Approval requests waiting for an approver (whole database)",
                          value=backlog.approvals_waiting),
        GaugeMetricFamily(f"{NAMESPACE}_approval_oldest_wait_seconds",
                          "How long the longest-waiting approval request has waited "
                          "(0 when none waits)", value=backlog.oldest_approval_seconds),
        GaugeMetricFamily(f"{NAMESPACE}_outbox_oldest_pending_seconds",
                          "How long the oldest pending outbox effect has waited "
                          "(0 when none)", value=backlog.oldest_outbox_seconds),
    ]


class Metrics:
    """This process's metrics: its registry, the turn hook, the webhook timing middleware
    and the ``/metrics`` handler. Build one per application (:func:`install`)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.registry = CollectorRegistry()
        self.turns = Histogram(
            f"{NAMESPACE}_turn_duration_seconds",
            "How long a conversation turn took in this process, by channel",
            ["channel"], buckets=TURN_BUCKETS, registry=self.registry)
        self.acks = Histogram(
            f"{NAMESPACE}_webhook_ack_duration_seconds",
            "How long this process took to answer a webhook request, by channel and "
            "status class", ["channel", "status_class"], buckets=ACK_BUCKETS,
            registry=self.registry)
        self.registry.register(_ForgedRequestsCollector(svc.forged_requests))
        for user_channel in UserChannel:  # every series present from the start, at 0
            self.turns.labels(user_channel.value)
        for channel in WebhookChannel:
            self.acks.labels(channel.value, "2xx")

    # bot.observations.Observations
    def turn_taken(self, channel: UserChannel, seconds: float) -> None:
        self.turns.labels(channel.value).observe(seconds)

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Handler) -> web.StreamResponse:
        """Time the webhooks' answers: a clock read and a histogram update, nothing more."""
        channel = webhook_channel(request.path)
        if channel is None or request.match_info.http_exception is not None:
            return await handler(request)  # not a webhook, or no route (a channel not set up)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.acks.labels(channel.value, status_class(status)).observe(
                time.perf_counter() - started)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            backlog: monitoring.Backlog | None = await monitoring.backlog(self.svc)
        except Exception as exc:  # the process's own numbers are still worth serving
            log.warning("metrics: the database did not answer the counts (%s)",
                        type(exc).__name__)
            backlog = None
        body = generate_latest(_Scrape(self.registry, backlog_families(backlog)))
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def install(app: web.Application, svc: Services) -> Metrics:
    """Serve ``/metrics`` on ``app``, time its webhooks and have turns reported."""
    # no *_created series: start times say nothing an alert needs
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = Metrics(svc)
    svc.observations = metrics
    app.middlewares.insert(0, metrics.middleware)
    app.router.add_get(PATH, metrics.handle)
    return metrics
