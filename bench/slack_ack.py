"""Slack acknowledgement benchmark: signed DM events against `safehaven serve`.

    python bench/slack_ack.py [--rate 200] [--seconds 10] [--saturate-seconds 3]
                              [--concurrency 32] [--repeat 3] [--database-url URL]

Starts these processes on 127.0.0.1 and drives them from this one:

* the fake Slack Web API from the tests (``tests/support/fake_slack.py``), so the
  replies the bot posts after each acknowledgement go somewhere real;
* ``safehaven serve`` ("app") with ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET`` and
  ``SLACK_API_URL`` pointing at the fake (scheduler off; SQLite unless --database-url);
* a bare aiohttp handler ("bare") that reads the body, checks the Slack signature and
  answers 200: the floor any Slack endpoint pays;
* for the breakdown only, the same ``serve`` with the work after the acknowledgement
  switched off ("ack path"), to show what bolt's dispatch alone costs.

Then:

1. open loop: signed ``message.im`` events ("help", "list" and an answer, from 100 users) at
   ``--rate`` per second for ``--seconds``, to the app then the bare handler; latency is
   measured from each request's *scheduled* send time, so a stall is not hidden by sending
   later (no coordinated omission); p50, p99 and max;
2. closed loop: ``--concurrency`` senders as fast as they can for ``--saturate-seconds``,
   bare handler, then app, then ack path, ``--repeat`` times; acknowledgements per second,
   and the app's figure as a ratio of the bare handler's (median of the rounds). The app's
   backlog is drained before the next server runs, so its background work never slows
   another server down.

The app's figures include its background work (claiming the event id, taking the turn,
posting the reply to the fake Slack), which shares the process and the CPU with the
acknowledgements. The fake counts the replies it receives: that shows every event was
answered, and how fast the background work runs (events over the round plus its drain).
Under saturation the app puts acknowledgements first and runs the work after them a job or
two at a time (``JobQueue`` in ``channels/slack/tasks.py``), so most of it is done after the
round: the table shows how many replies were posted during the round, how long the backlog
took to drain, and the slowest acknowledgement (Slack's limit is 3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ME = Path(__file__).resolve()
ROOT = ME.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
TOKEN = "xoxb-test-token"  # the fake's token
USERS = [f"UBENCH{i:03d}" for i in range(100)]
TEXTS = ("help", "list", "CONTROLLED")


# --- the servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_fake(port: int) -> None:
    from tests.support.fake_slack import FakeSlack

    await FakeSlack(record=False).start(port)
    await asyncio.Event().wait()


def run_bare(port: int) -> None:
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(SECRET)

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        if not verifier.is_valid(body, request.headers.get("X-Slack-Request-Timestamp", "0"),
                                 request.headers.get("X-Slack-Signature", "")):
            return web.Response(status=401)
        return web.Response(status=200)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def run_ack_path_only() -> None:
    """`safehaven serve` with nothing after the acknowledgement: our handlers still run,
    but the work they hand over is dropped. For the breakdown only."""
    from bot.app import cli
    from channels.slack.channel import SlackChannel

    def drop(self: SlackChannel, work: Any, **_: Any) -> None:
        work.close()

    SlackChannel.background = drop  # type: ignore[method-assign]
    raise SystemExit(cli.main(["serve"]))


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def wait_healthy(url: str, log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    tail = (await asyncio.to_thread(log.read_text))[-2000:]
    raise SystemExit(f"{url} did not come up:\n{tail}")


@contextlib.asynccontextmanager
async def servers(args: argparse.Namespace, workdir: Path) -> AsyncIterator[dict[str, str]]:
    ports = {name: free_port() for name in ("fake", "app", "bare", "ack")}
    python = sys.executable

    def serve_env(name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SAFEHAVEN_", "SLACK_"))}
        env.update(SAFEHAVEN_VAR_DIR=str(workdir / name), SAFEHAVEN_PORT=str(ports[name]),
                   SAFEHAVEN_SCHEDULER="off", SAFEHAVEN_LOG_LEVEL="WARNING",
                   SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
                   SLACK_API_URL=f"http://127.0.0.1:{ports['fake']}/api/")
        if args.database_url and name == "app":
            env["SAFEHAVEN_DATABASE_URL"] = args.database_url
        return env

    logs = {name: workdir / f"{name}.log" for name in ports}
    with process([python, str(ME), "--fake-api", str(ports["fake"])], logs["fake"]), \
            process([python, str(ME), "--bare", str(ports["bare"])], logs["bare"]), \
            process([python, "-m", "bot.app.cli", "serve"], logs["app"], serve_env("app")), \
            process([python, str(ME), "--ack-path-only"], logs["ack"], serve_env("ack")):
        for name in ("app", "bare", "ack"):
            await wait_healthy(f"http://127.0.0.1:{ports[name]}/healthz", logs[name])
        urls = {name: f"http://127.0.0.1:{ports[name]}/slack/events"
                for name in ("app", "bare", "ack")}
        yield {**urls, "stats": f"http://127.0.0.1:{ports['fake']}/stats"}


# --- load ------------------------------------------------------------------------------------


def signed_event() -> tuple[bytes, dict[str, str]]:
    user = secrets.choice(USERS)
    ts = f"{time.time():.6f}"
    body = json.dumps({
        "token": "legacy", "team_id": "T0001", "api_app_id": "A0001", "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(8), "event_time": int(time.time()),
        "event": {"type": "message", "channel": f"D{user}", "channel_type": "im",
                  "user": user, "text": secrets.choice(TEXTS), "ts": ts, "event_ts": ts,
                  "client_msg_id": secrets.token_hex(8)},
    }).encode()
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body,
                                 hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": signature}


@dataclass
class Result:
    latencies_ms: list[float]
    errors: int
    seconds: float

    @property
    def acked(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.acked / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


async def _send(session: aiohttp.ClientSession, url: str, scheduled: float,
                result: Result) -> None:
    body, headers = signed_event()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            ok = response.status == 200
    except aiohttp.ClientError:
        ok = False
    if ok:
        result.latencies_ms.append((time.perf_counter() - scheduled) * 1000)
    else:
        result.errors += 1


async def open_loop(url: str, rate: float, seconds: float) -> Result:
    result = Result([], 0, seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        start = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(session, url, scheduled, result)))
        await asyncio.gather(*tasks)
    return result


async def closed_loop(url: str, concurrency: int, seconds: float) -> Result:
    result = Result([], 0, seconds)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        deadline = time.perf_counter() + seconds

        async def sender() -> None:
            while time.perf_counter() < deadline:
                await _send(session, url, time.perf_counter(), result)

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return result


async def replies_posted(stats_url: str) -> int:
    """Messages the fake Slack has received: one reply per event, so the app's background
    work is done when this reaches the number of events it acknowledged."""
    async with aiohttp.ClientSession() as session, session.get(stats_url) as response:
        return int((await response.json())["messages"])


async def drained(stats_url: str, expected: int, limit: float = 180) -> float:
    """Wait until the fake Slack has received ``expected`` replies; seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:  # polling another process: no Event to wait on
        if await replies_posted(stats_url) >= expected:
            break
        await asyncio.sleep(0.2)
    return time.perf_counter() - start


# --- main ------------------------------------------------------------------------------------


@dataclass
class Round:
    bare: Result
    app: Result
    ack_path: Result
    drain: float
    answered_in_round: int  # replies the fake received while the app's round ran


async def bench(args: argparse.Namespace) -> None:
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="slack-ack-") as tmp:
        async with servers(args, Path(tmp)) as urls:
            sent = 0
            for name in ("app", "bare", "ack"):  # warm-up: bolt's auth.test, connections
                warm = await open_loop(urls[name], 50, 1)
                sent += warm.acked if name == "app" else 0
            await drained(urls["stats"], sent)
            fixed = {}
            for name in ("app", "bare"):
                fixed[name] = await open_loop(urls[name], args.rate, args.seconds)
                sent += fixed[name].acked if name == "app" else 0
            keep_up = await drained(urls["stats"], sent)
            for _ in range(args.repeat):
                bare = await closed_loop(urls["bare"], args.concurrency, args.saturate_seconds)
                before = await replies_posted(urls["stats"])
                app = await closed_loop(urls["app"], args.concurrency, args.saturate_seconds)
                during = await replies_posted(urls["stats"]) - before
                sent += app.acked
                drain = await drained(urls["stats"], sent)
                ack = await closed_loop(urls["ack"], args.concurrency, args.saturate_seconds)
                rounds.append(Round(bare, app, ack, drain, during))
            posted = await replies_posted(urls["stats"])
    report(args, fixed, keep_up, rounds, answered=posted >= sent)


def report(args: argparse.Namespace, fixed: dict[str, Result], keep_up: float,
           rounds: list[Round], *, answered: bool) -> None:
    ratio = statistics.median(r.app.rate / r.bare.rate for r in rounds)
    ack_ratio = statistics.median(r.ack_path.rate / r.bare.rate for r in rounds)
    print(f"# Slack ack benchmark (Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {'PostgreSQL' if args.database_url else 'SQLite'})")
    print(f"command: {' '.join(sys.argv)}")
    print()
    print(f"open loop, {args.rate:g} events/s for {args.seconds:g} s "
          "(latency from scheduled send time):")
    print()
    print("| server | acked | errors | p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in fixed.items():
        print(f"| {name} | {r.acked} | {r.errors} | {r.pct(50):.1f} | {r.pct(99):.1f} | "
              f"{max(r.latencies_ms, default=0):.1f} |")
    print()
    print(f"The app's replies had all reached the fake Slack {keep_up:.1f} s after the last "
          "event.")
    print()
    print(f"closed loop, {args.concurrency} concurrent senders for {args.saturate_seconds:g} s, "
          f"{args.repeat} round(s):")
    print()
    print("| round | bare acks/s | app acks/s | app/bare | app p99 ms | app max ms | app errors "
          "| replies during round/s | app backlog drained in s | background events/s "
          "| ack path acks/s | ack path/bare |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i, r in enumerate(rounds, start=1):
        background = r.app.acked / (args.saturate_seconds + r.drain)
        print(f"| {i} | {r.bare.rate:.0f} | {r.app.rate:.0f} | {r.app.rate / r.bare.rate:.2f} "
              f"| {r.app.pct(99):.1f} | {max(r.app.latencies_ms, default=0):.0f} "
              f"| {r.app.errors} | {r.answered_in_round / args.saturate_seconds:.0f} "
              f"| {r.drain:.1f} | {background:.0f} | "
              f"{r.ack_path.rate:.0f} | {r.ack_path.rate / r.bare.rate:.2f} |")
    print()
    slowest = max((max(r.app.latencies_ms, default=0) for r in rounds), default=0)
    print(f"throughput app/bare, median of {len(rounds)}: {ratio:.2f} "
          f"(ack path alone: {ack_ratio:.2f})")
    print(f"slowest app acknowledgement: {slowest:.0f} ms (Slack's limit: 3000 ms); "
          f"app errors: {sum(r.app.errors for r in rounds) + fixed['app'].errors}")
    print(f"every event answered: {'yes' if answered else 'NO'}")
    met = fixed["app"].pct(99) < 50 and ratio >= 0.5
    print(f"targets (p99 < 50 ms at {args.rate:g}/s; app/bare >= 0.5): "
          f"{'met' if met else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--saturate-seconds", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--fake-api", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ack-path-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_api:
        asyncio.run(run_fake(args.fake_api))
    elif args.bare:
        run_bare(args.bare)
    elif args.ack_path_only:
        run_ack_path_only()
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
