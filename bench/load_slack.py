"""Slack load: many concurrent multi-turn conversations through `safehaven serve`, and a soak.

    python bench/load_slack.py [--conversations 500] [--rounds 2] [--think-seconds 0]
                               [--database-url URL] [--keep DIR]
    python bench/load_slack.py --soak-seconds 600 [--soak-rate 1.0] [--think-seconds 0]
                               [--memory-probe | --malloc-trim] [--database-url URL]
                               [--keep DIR]
    python bench/load_slack.py --replicas N --database-url URL [--conversations 100]
                               [--rounds 1]

Starts, on 127.0.0.1, the fake Slack Web API from the tests (``tests/support/
fake_slack.py``, extended here so a driver in another process can follow each DM) and
``safehaven serve`` as real processes, ``serve`` with ``SLACK_API_URL`` at the fake (as
``bench/slack_ack.py`` does), the Teams endpoint off, the scheduler on (as ``serve`` runs by
default) and the console password transport (each SMS is a line in ``var/outbox.log``).
The database is SQLite under a temporary ``SAFEHAVEN_VAR_DIR``; with ``--database-url`` (a
PostgreSQL URL) a fresh database is created on that server for the run and dropped
afterwards (the database named in the URL is only used to create and drop it). Then every
conversation is the whole Slack flow, as a new user, each step a genuinely signed request and
each reply read back from the fake before the next step:

 1. a file DM (``message.im`` with ``files``; the bot downloads it from the fake) → the
    classification buttons;
 2. CONTROLLED → the information categories (checkboxes; two ticked) → the recipient
    question; "Fill in the form" → the bot opens the modal
    (``views.open``); the modal submitted (``view_submission``) → the purpose question;
 3. the purpose, typed → the lawful basis menu; an option picked → the consent form; the
    form opened and submitted → delivery method; "Encrypted archive" → password method;
    "SMS now" → the summary;
 4. "Confirm and send" → the AES-256 archive uploaded to the DM (``files.getUploadURL
    External``, the upload, ``files.completeUploadExternal``) and the post saying the
    password was texted.

Figures:

* acknowledgement latency of every request (p50, p99, max), by kind, and how many took
  longer than Slack's 3 s;
* reply latency: from a request's send time until the fake Slack *received* the bot's reply
  that the next step needs (the next question, the modal, the archive upload); both
  processes read the same system-wide monotonic clock;
* the whole conversation's duration;
* memory: the RSS of the ``serve`` process (``/proc/PID/status``) after a warm-up, its
  highest value sampled every 0.25 s during each round of ``--conversations`` run at once,
  3 s after the round, and its peak (VmHWM); per conversation: (peak - before) / N while
  they are in flight, (after - before) / N kept once they are done;
* CPU over each round (``/proc/PID/stat``) of ``serve``, the fake and this driver, the time
  each was runnable but waiting for a CPU (``/proc/PID/task/*/schedstat``), and the load
  average before and after (the machine may be shared); ``serve``'s CPU per conversation
  step (its CPU seconds over the round's signed requests) and its split between the event
  loop's thread and the others; ``--cprofile PREFIX`` (cProfile of the event loop thread on
  its CPU clock, ``PREFIX-N.prof``) or ``--py-spy PREFIX`` (py-spy samples of the GIL holder,
  ``PREFIX-N.txt``) through each round;
* errors, which must be 0: a request not answered 200, a modal refused, a reply that never
  came (``STEP_TIMEOUT``), anything the bot says only when something failed
  (``BAD_WORDS``), every ERROR line or traceback in the server's log, a reference texted
  more than once, and ``safehaven audit verify`` failing;
* what the bot recorded (read after the run): transfers and password sends by status, the SMS
  in the outbox, the fake's counts (posts by first line, posts repeated in a DM, anything
  posted after the driver had finished with that DM), and where the "password was texted"
  receipt came among the confirmation's replies (in the email text's message, or a message
  of its own before the archive, between, or after the email).

Replicas (``--replicas N``, PostgreSQL only): N ``serve`` processes with the scheduler off
and one ``safehaven worker``, each with its own port and var/, on the same fresh database and
one ``file://`` object store (also the audit anchor); conversations go round-robin over the
replicas, all of one conversation's requests to one. Adds each replica's requests and CPU
per step, each process's CPU when idle, how busy the machine's CPUs were, and a ``SUMMARY``
line per round (conversations/s, steps/s, ack and reply p50/p99, errors).

Soak (``--soak-seconds``): a new conversation every ``1/--soak-rate`` seconds for that long,
each the same whole flow (with ``--think-seconds``, each person pauses uniformly 0..2x that
before every step, so more are in flight); the RSS is sampled every ``--sample-seconds``
(10) and the least-squares slope after the first ``--soak-warmup`` seconds is reported with
the drift (the last minute's mean against the first minute after warm-up). To tell a leak
from memory the allocator keeps, ``--memory-probe`` runs ``serve`` with a thread that logs,
every ``--probe-seconds`` (60), its RSS, the objects Python's garbage collector tracks and
SQLite's own memory (``sqlite3_memory_used``); ``--malloc-trim`` also calls
``malloc_trim(0)`` at each reading and logs the RSS after it (which then changes the RSS
the soak itself samples). Environment variables other than ``SAFEHAVEN_*`` and ``SLACK_*``
reach ``serve``, e.g. ``MALLOC_ARENA_MAX=2``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import platform
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ME = Path(__file__).resolve()
ROOT = ME.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.slack_ack import SECRET, TOKEN, free_port  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402

FILE_BODY = b"Chronology of contact with the family, week by week.\n" * 40
RECIPIENT = {"name": "Priya Shah", "job_title": "Safeguarding Lead",
             "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
             "phone": "07911 123456", "department": "Children's safeguarding"}
CATEGORIES = ("Contact details only", "Other personal data")  # the information categories
CONSENT: dict[str, str | list[str]] = {
    "use_limits": "Only for the strategy meeting on Friday", "onward_sharing": "no",
    "delete_after_use": ["yes"]}
PURPOSE = "Strategy meeting about a child at risk, as agreed with the family"
STEP_TIMEOUT = 300.0   # seconds a reply may take before the step counts as an error
# Anything the bot says only when something failed (compared without case).
BAD_WORDS = ("something went wrong", "not accepted", "already answered", "could not",
             "was restarted while", "try again")


def now() -> float:
    """CLOCK_MONOTONIC: system-wide on Linux, so the fake's arrival times compare with
    this process's send times."""
    return time.monotonic()


# --- the fake Slack, followable from another process -----------------------------------------


class BenchSlack(FakeSlack):
    """The tests' fake Slack (token check, failure injection, upload URLs and file
    downloads as in the tests) with, for a driver in another process:

    * a per-DM log of what the bot did (``post``, ``update``, ``view``, ``upload``,
      ``ephemeral``), each with its arrival time, read by long polling
      ``GET /bench/wait?channel=D…&after=N``; ``POST /bench/forget?channel=D…`` drops a
      finished conversation, so the fake's memory stays flat through a soak;
    * messages kept per channel and ts (not in one growing list), archives counted but not
      kept, and any ``FB…`` file id served with the same small text file.
    """

    def __init__(self) -> None:
        super().__init__(record=False)
        self.log: dict[str, list[dict[str, Any]]] = {}
        self.waiters: dict[str, asyncio.Event] = {}
        self.stored: dict[tuple[str, str], dict[str, Any]] = {}
        self.counts: defaultdict[str, int] = defaultdict(int)
        self.titles: defaultdict[str, int] = defaultdict(int)  # posts by first line
        self.forgotten: set[str] = set()
        self.app.router.add_get("/bench/wait", self._wait)
        self.app.router.add_post("/bench/forget", self._forget)

    async def start(self, port: int = 0, *, backlog: int = 4096) -> BenchSlack:
        return await super().start(port, backlog=backlog)

    def _append(self, channel: str, entry: dict[str, Any]) -> None:
        entry["at"] = now()
        self.counts[entry["kind"]] += 1
        if channel in self.forgotten:
            self.counts[f"{entry['kind']} after the conversation ended"] += 1
        if entry["kind"] == "post":
            title = re.sub(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", "SH-…", entry["text"].split("\n")[0])
            self.titles[title[:60]] += 1
            if any(e["kind"] == "post" and e["text"] == entry["text"]
                   for e in self.log.get(channel, ())):
                self.counts["post repeated in its DM"] += 1
        self.log.setdefault(channel, []).append(entry)
        waiter = self.waiters.pop(channel, None)
        if waiter is not None:
            waiter.set()

    # Web API methods the bot calls, kept per channel.

    def api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel")), self._next_ts()
        blocks = list(params.get("blocks") or [])
        text = str(params.get("text", ""))
        self.stored[(channel, ts)] = {"ts": ts, "text": text, "blocks": blocks}
        self._append(channel, {"kind": "post", "ts": ts, "text": text, "blocks": blocks,
                               "thread_ts": params.get("thread_ts")})
        return {"channel": channel, "ts": ts, "message": {"text": text}}

    def api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel")), str(params.get("ts"))
        blocks = list(params.get("blocks") or [])
        stored = self.stored.get((channel, ts))
        if stored is not None:
            stored.update(blocks=blocks, text=str(params.get("text", stored["text"])))
        self._append(channel, {"kind": "update", "ts": ts, "text": str(params.get("text", "")),
                               "blocks": blocks})
        return {"channel": channel, "ts": ts}

    def api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.stored.get((str(params.get("channel")), str(params.get("latest"))))
        return {"messages": [stored] if stored else [], "has_more": False}

    def api_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        self._append(str(params.get("channel")), {"kind": "ephemeral",
                                                  "text": str(params.get("text", ""))})
        return {"message_ts": self._next_ts()}

    def api_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = dict(params.get("view") or {})
        view["id"] = "V" + secrets.token_hex(4).upper()
        trigger = str(params.get("trigger_id", ""))  # "tr.<user>.<n>", made by the driver
        user = trigger.split(".")[1] if trigger.count(".") == 2 else "unknown"
        self._append(f"D{user}", {"kind": "view", "view": view})
        return {"view": view}

    def api_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files") or []
        for f in files:
            upload = self.uploads.pop(str(f.get("id")), {})
            self._append(str(params.get("channel_id")), {
                "kind": "upload", "filename": upload.get("filename"),
                "size": upload.get("size"), "thread_ts": params.get("thread_ts")})
        return {"files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        if file_id not in self.uploads:
            return web.Response(status=404, text="unknown upload")
        self.uploads[file_id]["size"] = len(data)
        self.counts["upload bytes"] += len(data)
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        if not request.match_info["file_id"].startswith("FB"):
            return web.Response(status=404, text="file_not_found")
        self.counts["download"] += 1
        return web.Response(body=FILE_BODY, content_type="application/octet-stream")

    # The driver's side.

    async def _wait(self, request: web.Request) -> web.Response:
        channel = request.query["channel"]
        after = int(request.query.get("after", "0"))
        deadline = now() + float(request.query.get("timeout", "20"))
        while len(self.log.get(channel, ())) <= after and now() < deadline:
            waiter = self.waiters.setdefault(channel, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), deadline - now())
        return web.json_response(self.log.get(channel, [])[after:])

    async def _forget(self, request: web.Request) -> web.Response:
        channel = request.query["channel"]
        self.log.pop(channel, None)
        self.forgotten.add(channel)
        for key in [k for k in self.stored if k[0] == channel]:
            del self.stored[key]
        return web.json_response({"ok": True})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({**self.counts, "channels": len(self.log),
                                  "stored": len(self.stored), "posts": self.titles})


async def run_fake(port: int) -> None:
    await BenchSlack().start(port)
    await asyncio.Event().wait()


# --- processes -------------------------------------------------------------------------------


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=out)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def status_kib(pid: int, field_name: str) -> int:
    """A memory figure of a process from /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise KeyError(field_name)


# ``serve`` with a thread that, every N seconds, writes its RSS, the number of objects
# Python's garbage collector tracks, SQLite's own memory (``sqlite3_memory_used``, all
# connections, from the system libsqlite3 that ``_sqlite3`` links to; null if it cannot be
# loaded) and, with --malloc-trim, its RSS just after ``malloc_trim(0)``. Only for telling a
# leak of live objects from memory the allocator keeps; nothing in the bot is changed.
PROBE = r"""
import ctypes, gc, json, sys, threading, time

def probe(path, every, trim):
    try:
        sqlite = ctypes.CDLL("libsqlite3.so.0")
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    except OSError:
        sqlite = None
    libc = ctypes.CDLL("libc.so.6") if trim else None

    def rss():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    with open(path, "a") as out:
        while True:
            time.sleep(every)
            row = {"at": time.monotonic(), "rss": rss(), "objects": len(gc.get_objects()),
                   "sqlite": sqlite.sqlite3_memory_used() // 1024 if sqlite else None}
            if libc is not None:
                libc.malloc_trim(0)
                row["rss_trimmed"] = rss()
            out.write(json.dumps(row) + "\n")
            out.flush()

threading.Thread(target=probe, daemon=True,
                 args=(sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1")).start()
from bot.app.cli import main
sys.exit(main(["serve"]))
"""


# ``serve`` under cProfile, timed by the event loop thread's own CPU clock
# (``time.thread_time``): SIGUSR1 starts the profiler, SIGUSR2 stops it and writes the stats
# to ``argv[1]-<n>.prof`` (read with ``python -m pstats``). Only the event loop's thread is
# profiled: SQLite's work in aiosqlite's thread shows as that thread's CPU (``--threads``).
CPROFILE = r"""
import cProfile, itertools, signal, sys, time
prefix, rounds, profiler = sys.argv[1], itertools.count(1), None

def start(*_):
    global profiler
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()

def stop(*_):
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(f"{prefix}-{next(rounds)}.prof")

signal.signal(signal.SIGUSR1, start)
signal.signal(signal.SIGUSR2, stop)
from bot.app.cli import main
sys.exit(main(["serve"]))
"""


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of the live threads of ``pid``: the event loop's (the
    main thread) and the others (aiosqlite's connections, executors) together."""
    out: defaultdict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            name = "event loop" if task.name == str(pid) else "other threads"
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            out[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return dict(out)


@dataclass
class Servers:
    app: str
    fake: str
    pid: int
    fake_pid: int
    log: Path
    var: Path
    env: dict[str, str]   # serve's environment (its database, key and var/)
    probe: Path | None    # --memory-probe's readings, one JSON object a line
    # With --replicas: every serve replica (the first is app/pid/log/var above) and the
    # worker; without, the one serve.
    apps: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    vars: list[Path] = field(default_factory=list)
    worker_pid: int | None = None
    _turn: Iterator[int] = field(default_factory=itertools.count)

    def pick(self) -> str:
        """The next serve replica's Slack URL, round-robin (the one serve without
        --replicas)."""
        return self.apps[next(self._turn) % len(self.apps)] if self.apps else self.app

    def names(self) -> dict[str, int]:
        """Each serve process by name ("serve", or "serve 1".."serve N") and its pid."""
        if len(self.pids) <= 1 and self.worker_pid is None:
            return {"serve": self.pid}
        return {f"serve {i}": pid for i, pid in enumerate(self.pids, start=1)}

    def cpu(self) -> dict[str, tuple[float, float]]:
        """(CPU seconds used, seconds spent ready to run but waiting for a CPU) so far, of
        serve (each replica), the worker, the fake Slack and this driver."""
        worker = [("worker", self.worker_pid)] if self.worker_pid is not None else []
        return {name: (cpu_seconds(pid), wait_seconds(pid)) for name, pid in
                (*self.names().items(), *worker, ("fake Slack", self.fake_pid),
                 ("driver", os.getpid()))}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_seconds(pid: int) -> float:
    """Time the process's live threads spent runnable but waiting for a CPU (the second
    figure of /proc/PID/task/TID/schedstat), in seconds: the machine's other work taking
    the CPUs (or this run's other processes)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def cpu_share(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]],
              seconds: float) -> str:
    """Each process's CPU over an interval, and its wait for a CPU, as % of the interval."""
    return ", ".join(
        f"{name} {100 * (after[name][0] - before[name][0]) / seconds:.0f} % "
        f"(waiting for a CPU {100 * (after[name][1] - before[name][1]) / seconds:.0f} %)"
        for name in after)


@contextlib.asynccontextmanager
async def servers(args: argparse.Namespace, workdir: Path) -> AsyncIterator[Servers]:
    ports = {"fake": free_port(), "app": free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "SLACK_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(workdir / "var"), SAFEHAVEN_PORT=str(ports["app"]),
               SAFEHAVEN_LOG_LEVEL="WARNING", SAFEHAVEN_SCHEDULER=args.scheduler,
               SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
               SLACK_API_URL=f"http://127.0.0.1:{ports['fake']}/api/",
               SAFEHAVEN_TEAMS="off",  # the Slack endpoint only
               SAFEHAVEN_SECRET_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    logs = {name: workdir / f"{name}.log" for name in ports}
    python = sys.executable
    serve = [python, "-m", "bot.app.cli", "serve"]
    probe = workdir / "probe.jsonl" if args.memory_probe or args.malloc_trim else None
    if probe is not None:
        serve = [python, "-c", PROBE, str(probe), str(args.probe_seconds),
                 "1" if args.malloc_trim else "0"]
    if args.cprofile:
        serve = [python, "-c", CPROFILE, args.cprofile]
    async with fresh_database(args.database_url) as url:
        if url:
            env["SAFEHAVEN_DATABASE_URL"] = url
        if args.replicas:
            async with replicas(args, workdir, env, ports["fake"], serve) as srv:
                yield srv
            return
        with process([python, str(ME), "--fake-api", str(ports["fake"])],
                     logs["fake"]) as fake, \
                process(serve, logs["app"], env) as app:
            await wait_up(f"http://127.0.0.1:{ports['app']}/healthz", logs["app"], app)
            yield Servers(app=f"http://127.0.0.1:{ports['app']}/slack/events",
                          fake=f"http://127.0.0.1:{ports['fake']}", pid=app.pid,
                          fake_pid=fake.pid, log=logs["app"], var=workdir / "var", env=env,
                          probe=probe)


@contextlib.asynccontextmanager
async def replicas(args: argparse.Namespace, workdir: Path, env: dict[str, str],
                   fake_port: int, serve: list[str]) -> AsyncIterator[Servers]:
    """--replicas N: N ``serve`` processes with ``SAFEHAVEN_SCHEDULER=off`` and one
    ``safehaven worker`` (the scheduler), as ``tests/support/replicas.py`` runs them: each
    with its own port and ``SAFEHAVEN_VAR_DIR`` (``replica-N/var``, ``worker/var``), all on
    the same PostgreSQL database, the same ``file://`` object store (``objects/``, also
    holding the audit anchor), key and fake Slack. The first replica starts (and migrates
    the schema) alone, then the others."""
    store = (workdir / "objects").resolve()
    store.mkdir(parents=True, exist_ok=True)
    shared = {**env, "SAFEHAVEN_OBJECT_STORE": store.as_uri(),
              # the audit trail's checkpoints in the shared store, not on one host's disk
              "SAFEHAVEN_AUDIT_ANCHOR": "objects:audit-anchor"}
    python = sys.executable
    hosts: list[tuple[str, dict[str, str]]] = []
    for i in range(1, args.replicas + 1):
        hosts.append((f"replica-{i}", {
            **shared, "SAFEHAVEN_VAR_DIR": str(workdir / f"replica-{i}" / "var"),
            "SAFEHAVEN_PORT": str(free_port()), "SAFEHAVEN_SCHEDULER": "off"}))
    worker_env = {**shared, "SAFEHAVEN_VAR_DIR": str(workdir / "worker" / "var"),
                  "SAFEHAVEN_PORT": str(free_port()), "SAFEHAVEN_SCHEDULER": "on"}
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(process([python, str(ME), "--fake-api", str(fake_port)],
                                           workdir / "fake.log"))
        procs: list[subprocess.Popen[bytes]] = []
        for i, (name, host_env) in enumerate(hosts):
            procs.append(stack.enter_context(process(serve, workdir / f"{name}.log",
                                                     host_env)))
            if i == 0:   # the first migrates the fresh database before the others start
                await wait_up(f"http://127.0.0.1:{host_env['SAFEHAVEN_PORT']}/healthz",
                              workdir / f"{name}.log", procs[0])
        for (name, host_env), proc in zip(hosts, procs, strict=True):
            await wait_up(f"http://127.0.0.1:{host_env['SAFEHAVEN_PORT']}/healthz",
                          workdir / f"{name}.log", proc)
        worker = stack.enter_context(process([python, "-m", "bot.app.cli", "worker"],
                                             workdir / "worker.log", worker_env))
        await asyncio.sleep(2)
        if worker.poll() is not None:
            raise SystemExit("the worker exited: "
                             + (workdir / "worker.log").read_text(errors="replace")[-2000:])
        apps = [f"http://127.0.0.1:{e['SAFEHAVEN_PORT']}/slack/events" for _, e in hosts]
        logs = [workdir / f"{name}.log" for name, _ in hosts] + [workdir / "worker.log"]
        var_dirs = [Path(e["SAFEHAVEN_VAR_DIR"]) for _, e in [*hosts, ("worker", worker_env)]]
        yield Servers(app=apps[0], fake=f"http://127.0.0.1:{fake_port}", pid=procs[0].pid,
                      fake_pid=fake.pid, log=logs[0], var=var_dirs[0], env=hosts[0][1],
                      probe=None, apps=apps, pids=[p.pid for p in procs], logs=logs,
                      vars=var_dirs, worker_pid=worker.pid)


async def wait_up(url: str, log: Path, proc: subprocess.Popen[bytes],
                  seconds: float = 120.0) -> None:
    """Until ``url`` answers 200 (start-up migrates the schema, and the machine may be
    busy); a process that exits, or a minute or two without an answer, ends the run."""
    deadline = now() + seconds
    async with aiohttp.ClientSession() as session:
        while now() < deadline and proc.poll() is None:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-2000:]
    raise SystemExit(f"{url} did not come up (exit status {proc.poll()}):\n{tail}")


@contextlib.asynccontextmanager
async def fresh_database(server: str | None) -> AsyncIterator[str | None]:
    """With ``--database-url`` (a PostgreSQL URL): a new, empty database on that server for
    this run (``serve`` creates the schema), dropped afterwards; the database named in the
    URL is only connected to, to create and drop it. Without: None (SQLite in var/)."""
    if not server:
        yield None
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(server)
    if u.get_backend_name() != "postgresql":
        raise SystemExit("--database-url must be a PostgreSQL URL (postgresql+asyncpg://...)")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username,
                                     password=u.password, database=u.database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    name = f"sh_load_{secrets.token_hex(4)}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield u.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def outcome(srv: Servers) -> dict[str, Any]:
    """What the bot recorded, read after the run: transfers and password sends by status, the
    SMS in the console transport's outbox (and any reference texted twice), and
    ``safehaven audit verify`` on the audit trail's hash chain."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    url = srv.env.get("SAFEHAVEN_DATABASE_URL") or \
        f"sqlite+aiosqlite:///{(srv.var / 'safehaven.db').resolve()}"
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            transfers = {status: n for status, n in (await conn.execute(text(
                "SELECT status, count(*) FROM transfers GROUP BY status"))).all()}
            sends = {f"{kind} {status}": n for kind, status, n in (await conn.execute(
                text("SELECT kind, status, count(*) FROM password_sends GROUP BY kind, status"
                     ))).all()}
    finally:
        await engine.dispose()
    outboxes = [v / "outbox.log" for v in (srv.vars or [srv.var])]  # each replica's, worker's
    texted = re.findall(r"^--- \S+ SMS to \S+ \((SH-[0-9A-Z-]+)\)$",
                        "".join(o.read_text() for o in outboxes if o.exists()), re.MULTILINE)
    twice = sorted(ref for ref in set(texted) if texted.count(ref) > 1)
    verify = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot.app.cli", "audit", "verify"], cwd=ROOT,
        env=srv.env, capture_output=True, text=True, timeout=300)
    return {"transfers": transfers, "sends": sends, "sms": len(texted),
            "texted twice": twice, "audit": verify.stdout.strip() or verify.stderr[-300:],
            "audit ok": verify.returncode == 0}


def read_probe(path: Path | None, began: float) -> list[dict[str, Any]]:
    """--memory-probe's readings, ``t`` in seconds from ``began``."""
    if path is None or not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{**row, "t": row["at"] - began} for row in rows]


def report_probe(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    trimmed = any("rss_trimmed" in row for row in rows)
    print("memory probe in serve (t from the soak's start):")
    print()
    print("| t s | RSS MiB | objects tracked by gc | SQLite's own memory KiB |"
          + (" RSS after malloc_trim MiB |" if trimmed else ""))
    print("| ---: | ---: | ---: | ---: |" + (" ---: |" if trimmed else ""))
    for row in rows:
        sqlite = "-" if row["sqlite"] is None else f"{row['sqlite']:,}"
        print(f"| {row['t']:.0f} | {row['rss'] / 1024:.1f} | {row['objects']:,} | {sqlite} |"
              + (f" {row['rss_trimmed'] / 1024:.1f} |" if trimmed else ""))
    print()


def report_outcome(result: dict[str, Any], conversations: int) -> list[str]:
    """Prints the outcome; returns the problems in it (counted as errors)."""
    print(f"transfers by status: {json.dumps(result['transfers'], sort_keys=True)}; "
          f"password sends by kind and status: {json.dumps(result['sends'], sort_keys=True)}")
    print(f"SMS in the console outbox: {result['sms']} for {conversations} conversations "
          f"started; references texted more than once: {len(result['texted twice'])}")
    print(f"audit verify: {result['audit']}")
    problems = [f"{ref} texted more than once" for ref in result["texted twice"]]
    if not result["audit ok"]:
        problems.append(f"audit verify failed: {result['audit']}")
    return problems


# --- one conversation ------------------------------------------------------------------------


_ids = itertools.count(1)


def signed_headers(body: bytes, content_type: str) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body,
                                 hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature}


def controls(blocks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(b, e) for b in blocks if b.get("type") == "actions" for e in b.get("elements", [])]


def find_control(blocks: list[dict[str, Any]], label: str
                 ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(block, element) of the button or select option whose text starts with ``label``."""
    for block, element in controls(blocks):
        if element.get("type") == "button" and \
                (element.get("text") or {}).get("text", "").startswith(label):
            return block, element
        for option in element.get("options", []):
            if option["text"]["text"].startswith(label):
                return block, {**element, "selected_option": option}
    return None


def text_of(entry: dict[str, Any]) -> str:
    parts = [entry.get("text", "")]
    for block in entry.get("blocks") or []:
        if block.get("type") == "section":
            parts.append(block["text"]["text"])
        elif block.get("type") == "context":
            parts += [e.get("text", "") for e in block.get("elements", [])]
    return "\n".join(parts)


class StepFailed(Exception):
    pass


@dataclass
class Figures:
    ack_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    reply_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    conversation_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    completed: int = 0
    started: int = 0
    steps_by: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))  # by URL
    # where the "password was texted" receipt came, relative to the archive and the email
    receipt: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))

    def all_acks(self) -> list[float]:
        return [v for values in self.ack_ms.values() for v in values]

    def all_replies(self) -> list[float]:
        return [v for values in self.reply_ms.values() for v in values]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


class Conversation:
    """One person's whole transfer, driven step by step through signed requests."""

    def __init__(self, session: aiohttp.ClientSession, servers: Servers, figures: Figures,
                 think: float) -> None:
        self.session = session
        self.servers = servers
        self.figures = figures
        self.think = think
        self.user = "UL" + secrets.token_hex(5).upper()
        self.dm = f"D{self.user}"
        self.entries: list[dict[str, Any]] = []
        self.blocks: dict[str, list[dict[str, Any]]] = {}   # ts -> current blocks
        self.last_sent = 0.0
        self.app = servers.pick()   # every request of this conversation goes to one replica

    # --- plumbing --------------------------------------------------------------------------

    async def _post(self, kind: str, body: bytes, content_type: str) -> tuple[float, str]:
        """Send a signed request; its send time and the acknowledgement's body."""
        sent = now()
        try:
            async with self.session.post(self.app, data=body,
                                         headers=signed_headers(body, content_type)) as r:
                text = await r.text()
                status = r.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise StepFailed(f"{kind}: {type(exc).__name__}") from None
        self.figures.ack_ms[kind].append((now() - sent) * 1000)
        self.figures.steps_by[self.app] += 1
        self.last_sent = sent
        if status != 200:
            raise StepFailed(f"{kind}: HTTP {status} {text[:200]}")
        return sent, text

    async def _more(self) -> None:
        url = (f"{self.servers.fake}/bench/wait?channel={self.dm}&after={len(self.entries)}"
               "&timeout=20")
        try:
            async with self.session.get(url) as r:
                new = await r.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise StepFailed(f"reading the fake Slack: {type(exc).__name__}") from None
        for entry in new:
            if entry["kind"] in ("post", "update"):
                self.blocks[entry["ts"]] = entry["blocks"]
            if entry["kind"] in ("post", "update", "ephemeral"):
                for word in BAD_WORDS:
                    if word in text_of(entry).lower():
                        raise StepFailed(f"the bot said {word!r}: {text_of(entry)[:300]}")
        self.entries += new

    async def until(self, what: str, sent: float, mark: int,
                    predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first entry from ``mark`` on that satisfies ``predicate``; its reply latency
        is recorded under ``what``."""
        deadline = now() + STEP_TIMEOUT
        checked = mark
        while True:
            for entry in self.entries[checked:]:
                if predicate(entry):
                    self.figures.reply_ms[what].append((entry["at"] - sent) * 1000)
                    return entry
            checked = len(self.entries)
            if now() > deadline:
                raise StepFailed(f"{what}: no reply in {STEP_TIMEOUT:g} s")
            await self._more()

    def question_with(self, label: str) -> Callable[[dict[str, Any]], bool]:
        return lambda e: e["kind"] == "post" and find_control(e["blocks"], label) is not None

    async def pause(self) -> None:
        if self.think > 0:
            await asyncio.sleep(random.uniform(0, 2 * self.think))

    # --- what the person does --------------------------------------------------------------

    def _event(self, event: dict[str, Any]) -> bytes:
        return json.dumps({
            "token": "legacy", "team_id": "T0001", "api_app_id": "A0001",
            "type": "event_callback", "event_id": f"EvL{next(_ids):09d}",
            "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": "T0001", "user_id": "UBOT0000", "is_bot": True}],
        }).encode()

    def _message(self, text: str, **extra: Any) -> dict[str, Any]:
        ts = f"{time.time():.6f}"
        return {"type": "message", "channel": self.dm, "channel_type": "im", "user": self.user,
                "text": text, "ts": ts, "event_ts": ts, "client_msg_id": secrets.token_hex(8),
                **extra}

    async def send_file(self, then: str) -> dict[str, Any]:
        file_id = "FB" + secrets.token_hex(5).upper()
        shared = [{"id": file_id, "name": "chronology.txt", "size": len(FILE_BODY),
                   "mimetype": "text/plain",
                   "url_private_download": f"{self.servers.fake}/files/{file_id}"}]
        mark = len(self.entries)
        sent, _ = await self._post("event (file DM)", self._event(self._message(
            "", subtype="file_share", files=shared)), "application/json")
        return await self.until("file DM → classification", sent, mark,
                                self.question_with(then))

    async def say(self, text: str, what: str, then: str) -> dict[str, Any]:
        mark = len(self.entries)
        sent, _ = await self._post("event (typed answer)", self._event(self._message(text)),
                                   "application/json")
        return await self.until(what, sent, mark, self.question_with(then))

    def _action(self, message: dict[str, Any], label: str,
                state: dict[str, Any] | None = None) -> dict[str, Any]:
        ts = message["ts"]
        found = find_control(self.blocks.get(ts, message["blocks"]), label)
        if found is None:
            raise StepFailed(f"no control {label!r} on the question")
        block, element = found
        action = {"type": element["type"], "action_id": element["action_id"],
                  "block_id": block.get("block_id", ""), "action_ts": f"{time.time():.6f}"}
        if element["type"] == "button":
            action.update(value=element.get("value", ""), text=element["text"])
        else:
            action["selected_option"] = element["selected_option"]
        return {
            "type": "block_actions",
            "user": {"id": self.user, "username": self.user.lower(), "team_id": "T0001"},
            "api_app_id": "A0001", "token": "legacy", "team": {"id": "T0001"},
            "trigger_id": f"tr.{self.user}.{next(_ids)}",
            "container": {"type": "message", "message_ts": ts, "channel_id": self.dm,
                          "is_ephemeral": False},
            "channel": {"id": self.dm}, "enterprise": None,
            "message": {"type": "message", "ts": ts, "text": message.get("text", ""),
                        "blocks": self.blocks.get(ts, message["blocks"])},
            "state": {"values": state or {}},
            "response_url": f"{self.servers.fake}/hooks/1",
            "actions": [action],
        }

    async def click(self, message: dict[str, Any], label: str, what: str,
                    predicate: Callable[[dict[str, Any]], bool],
                    state: dict[str, Any] | None = None) -> dict[str, Any]:
        mark = len(self.entries)
        body = urlencode({"payload": json.dumps(self._action(message, label, state))}).encode()
        sent, _ = await self._post("action", body, "application/x-www-form-urlencoded")
        return await self.until(what, sent, mark, predicate)

    async def tick(self, message: dict[str, Any], labels: tuple[str, ...], what: str,
                   predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Tick the boxes of a several-choice question whose labels start with ``labels``,
        then press the button in the same block (Slack sends what is ticked in ``state``),
        as ``SlackUser.tick`` in the tests does."""
        blocks = self.blocks.get(message["ts"], message["blocks"])
        found = next(((b, e) for b, e in controls(blocks)
                      if e.get("type") in ("checkboxes", "multi_static_select")), None)
        if found is None:
            raise StepFailed(f"{what}: no boxes to tick on the question")
        block, boxes = found
        ticked = [o for o in boxes["options"]
                  if any(o["text"]["text"].startswith(label) for label in labels)]
        button = next((e for b, e in controls(blocks) if b is block
                       and e.get("type") == "button"), None)
        if len(ticked) != len(labels) or button is None:
            raise StepFailed(f"{what}: cannot tick {labels} on the question")
        state = {block["block_id"]: {boxes["action_id"]: {
            "type": boxes["type"], "selected_options": ticked}}}
        return await self.click(message, button["text"]["text"], what, predicate, state)

    async def submit(self, view: dict[str, Any], values: dict[str, str | list[str]],
                     what: str, then: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for block in view["blocks"]:
            if block.get("type") != "input":
                continue
            given = values.get(block["block_id"].removeprefix("f."))
            element = block["element"]
            if element["type"] == "static_select":
                chosen = next((o for o in element["options"] if o["value"] == given), None)
                state[block["block_id"]] = {"v": {"type": "static_select",
                                                  "selected_option": chosen}}
            elif element["type"] == "checkboxes":
                wanted = given if isinstance(given, list) else [given] if given else []
                state[block["block_id"]] = {"v": {"type": "checkboxes", "selected_options": [
                    o for o in element["options"] if o["value"] in wanted]}}
            else:
                state[block["block_id"]] = {"v": {"type": "plain_text_input",
                                                  "value": given or element.get("initial_value")}}
        payload = {
            "type": "view_submission", "team": {"id": "T0001"},
            "user": {"id": self.user, "username": self.user.lower(), "team_id": "T0001"},
            "api_app_id": "A0001", "token": "legacy", "trigger_id": f"tr.{self.user}.0",
            "view": {**view, "state": {"values": state}, "team_id": "T0001", "app_id": "A0001",
                     "bot_id": "B0001", "hash": "1"},
        }
        mark = len(self.entries)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        sent, ack = await self._post("view_submission", body,
                                     "application/x-www-form-urlencoded")
        if ack.strip() not in ("", "{}"):
            raise StepFailed(f"the modal was refused: {ack[:300]}")
        return await self.until(what, sent, mark, then)

    async def form(self, question: dict[str, Any], values: dict[str, str | list[str]],
                   what: str, then: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        view = await self.click(question, "Fill in the form", "form button → modal opened",
                                lambda e: e["kind"] == "view")
        await self.pause()
        return await self.submit(view["view"], values, what, then)

    def _receipt_place(self, receipt: dict[str, Any], upload: dict[str, Any],
                       email: dict[str, Any]) -> str:
        """Where the receipt for the SMS came among the confirmation's replies."""
        if receipt is email:
            return "in the email text's message, after the archive"
        at = {id(e): i for i, e in enumerate(self.entries)}
        if at[id(receipt)] < at[id(upload)]:
            return "a message of its own BEFORE the archive was handed back"
        if at[id(receipt)] < at[id(email)]:
            return "a message of its own between the archive and the email text"
        return "a message of its own after the email text"

    # --- the whole flow --------------------------------------------------------------------

    async def run(self) -> None:
        self.figures.started += 1
        began = now()
        try:
            question = await self.send_file("CONTROLLED")
            await self.pause()
            question = await self.click(question, "CONTROLLED",
                                        "classification → information categories",
                                        lambda e: e["kind"] == "post" and any(
                                            el.get("type") == "checkboxes"
                                            for _, el in controls(e["blocks"])))
            await self.pause()
            question = await self.tick(question, CATEGORIES, "categories → recipient",
                                       self.question_with("Fill in the form"))
            await self.pause()
            await self.form(question, dict(RECIPIENT), "recipient modal → purpose",
                            lambda e: e["kind"] == "post" and "Why is this being shared"
                            in text_of(e))
            await self.pause()
            question = await self.say(PURPOSE, "purpose → lawful basis",
                                      "UK GDPR Art 6(1)(e)")
            await self.pause()
            question = await self.click(question, "UK GDPR Art 6(1)(e)",
                                        "lawful basis → consent",
                                        self.question_with("Fill in the form"))
            await self.pause()
            question = await self.form(question, CONSENT, "consent modal → delivery",
                                       self.question_with("Encrypted archive"))
            await self.pause()
            question = await self.click(question, "Encrypted archive",
                                        "delivery → password method",
                                        self.question_with("SMS now"))
            await self.pause()
            question = await self.click(question, "SMS now", "password method → summary",
                                        self.question_with("Confirm and send"))
            await self.pause()
            mark = len(self.entries)
            upload = await self.click(question, "Confirm and send", "confirm → archive uploaded",
                                      lambda e: e["kind"] == "upload")
            confirmed = self.last_sent
            if not re.fullmatch(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}\.zip", upload["filename"] or "") \
                    or not upload["size"]:
                raise StepFailed(f"unexpected upload {upload}")
            email = await self.until("confirm → email text", confirmed, mark,
                                     lambda e: e["kind"] == "post"
                                     and "Ready-to-paste email" in text_of(e))
            receipt = await self.until("confirm → SMS receipt", confirmed, mark,
                                       lambda e: e["kind"] == "post"
                                       and "the password was texted" in text_of(e))
            self.figures.receipt[self._receipt_place(receipt, upload, email)] += 1
            self.figures.completed += 1
            self.figures.conversation_s.append(now() - began)
        except StepFailed as exc:
            self.figures.errors.append(f"{self.user}: {exc}")
        finally:
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.post(
                        f"{self.servers.fake}/bench/forget?channel={self.dm}") as r:
                    await r.read()


# --- runs ------------------------------------------------------------------------------------


def server_errors(log: Path, seen: int = 0) -> list[str]:
    """ERROR/CRITICAL lines and tracebacks in the server's log, from line ``seen`` on."""
    lines = log.read_text(errors="replace").splitlines()[seen:]
    return [line for line in lines
            if re.search(r"\b(ERROR|CRITICAL)\b|^Traceback", line)]


def server_warnings(log: Path) -> list[str]:
    """WARNING lines in the server's log (reported, not counted as errors)."""
    return [line for line in log.read_text(errors="replace").splitlines()
            if re.search(r"\bWARNING\b", line)]


async def conversations(session: aiohttp.ClientSession, servers: Servers, figures: Figures,
                        count: int, think: float) -> None:
    await asyncio.gather(*(Conversation(session, servers, figures, think).run()
                           for _ in range(count)))


async def settle_rss(pid: int, seconds: float = 3.0) -> int:
    await asyncio.sleep(seconds)
    return status_kib(pid, "VmRSS")


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                 timeout=aiohttp.ClientTimeout(total=120))


@dataclass
class Round:
    conversations: int
    seconds: float
    rss_before: int
    rss_peak: int     # the highest RSS sampled while the round ran
    rss_after: int
    figures: Figures
    cpu: str          # each process's CPU over the round, and its wait for a CPU
    serve_cpu: float = 0.0   # serve's CPU seconds (user + system) over the round (all replicas)
    # each process's CPU seconds over the round, by name ("serve 1", "worker", ...)
    cpu_s: dict[str, float] = field(default_factory=dict)


async def sample_peak(pid: int, every: float = 0.25) -> int:
    """The highest RSS (KiB) of ``pid`` seen until cancelled; read with ``task.result()``
    after cancelling via :func:`stop_peak`."""
    peak = 0
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            peak = max(peak, status_kib(pid, "VmRSS"))
            await asyncio.sleep(every)
    return peak


async def stop_peak(task: asyncio.Task[int]) -> int:
    task.cancel()
    return await task


@contextlib.contextmanager
def run_dir(args: argparse.Namespace, prefix: str) -> Iterator[Path]:
    """A temporary directory for the processes' logs and the bot's var/, or ``--keep``'s
    (left in place afterwards, to read the logs)."""
    if args.keep:
        path = Path(args.keep).resolve()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


async def burst(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    with run_dir(args, "load-slack-") as tmp:
        async with servers(args, tmp) as srv, client() as session:
            warm = Figures()
            await conversations(session, srv, warm, args.warmup, 0)
            idle = srv.cpu()
            rss = await settle_rss(srv.pid)
            idle_cpu = {k: (v[0] - idle[k][0]) / 3.0 for k, v in srv.cpu().items()}
            start_rss = rss
            rounds: list[Round] = []
            for i in range(args.rounds):
                figures = Figures()
                sampling = asyncio.create_task(sample_peak(srv.pid))
                spy = start_py_spy(args, srv.pid, i)
                if args.cprofile:
                    os.kill(srv.pid, 10)   # SIGUSR1: the profiler starts
                threads = thread_cpu(srv.pid)
                cpu = srv.cpu()
                machine = machine_cpu()
                began = now()
                await conversations(session, srv, figures, args.conversations,
                                    args.think_seconds)
                seconds = now() - began
                cpu_after = srv.cpu()
                machine_after = machine_cpu()
                threads_after = thread_cpu(srv.pid)
                if args.cprofile:
                    os.kill(srv.pid, 12)   # SIGUSR2: the profiler stops, writes its stats
                used = cpu_share(cpu, cpu_after, seconds)
                stop_py_spy(spy)
                print("  serve's CPU s by thread over the round: " + ", ".join(
                    f"{name} {threads_after[name] - threads.get(name, 0.0):.2f}"
                    for name in sorted(threads_after, key=lambda k: threads.get(k, 0.0)
                                       - threads_after[k])), file=sys.stderr, flush=True)
                in_round = await stop_peak(sampling)
                after = await settle_rss(srv.pid)
                cpu_s = {k: cpu_after[k][0] - cpu[k][0] for k in cpu_after}
                cpu_s["machine busy"] = (machine_after[0] - machine[0]) / max(
                    1e-9, machine_after[1] - machine[1])
                rounds.append(Round(args.conversations, seconds, rss, in_round, after,
                                    figures, used, sum(cpu_s[k] for k in srv.names()),
                                    cpu_s))
                print(f"  round {i + 1}: {figures.completed}/{figures.started} completed in "
                      f"{seconds:.1f} s, {len(figures.errors)} errors, RSS {rss / 1024:.1f} → "
                      f"peak {in_round / 1024:.1f} → {after / 1024:.1f} MiB",
                      file=sys.stderr, flush=True)
                rss = after
            peak = status_kib(srv.pid, "VmHWM")
            logged = [line for log in (srv.logs or [srv.log]) for line in server_errors(log)]
            warnings = [line for log in (srv.logs or [srv.log])
                        for line in server_warnings(log)]
            fake_stats = await _stats(session, srv)
            result = await outcome(srv)
    report_burst(args, warm, start_rss, rounds, peak, logged, warnings, fake_stats,
                 (load_before, os.getloadavg()), result)
    if args.replicas:
        report_replicas(srv, rounds, idle_cpu)


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all the machine's CPUs so far (/proc/stat): every process,
    this run's and others' (PostgreSQL's too)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]   # idle, iowait
    return sum(values) - idle, sum(values)


def report_replicas(srv: Servers, rounds: list[Round], idle: dict[str, float]) -> None:
    """--replicas: each round's throughput, and each replica's steps and CPU per step."""
    print()
    print(f"## {len(srv.apps)} serve replica(s) + 1 worker, conversations round-robin")
    print()
    print("CPU when idle (the 3 s after the warm-up, % of a CPU): " + ", ".join(
        f"{name} {100 * idle[name]:.1f} %" for name in (*srv.names(), "worker")))
    for i, r in enumerate(rounds, start=1):
        print(f"round {i}: the machine's CPUs were {100 * r.cpu_s['machine busy']:.0f} % busy "
              f"(all {os.cpu_count()}, every process on the machine, /proc/stat)")
    print()
    print("| round | process | signed requests | CPU s | CPU % of the round | "
          "CPU ms per step |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for i, r in enumerate(rounds, start=1):
        for (name, _), app in zip(srv.names().items(), srv.apps, strict=True):
            steps = r.figures.steps_by.get(app, 0)
            print(f"| {i} | {name} | {steps} | {r.cpu_s[name]:.2f} | "
                  f"{100 * r.cpu_s[name] / r.seconds:.0f} | "
                  f"{1000 * r.cpu_s[name] / max(1, steps):.2f} |")
        steps = len(r.figures.all_acks())
        print(f"| {i} | all serve | {steps} | {r.serve_cpu:.2f} | "
              f"{100 * r.serve_cpu / r.seconds:.0f} | {1000 * r.serve_cpu / max(1, steps):.2f} |")
        print(f"| {i} | worker | - | {r.cpu_s['worker']:.2f} | "
              f"{100 * r.cpu_s['worker'] / r.seconds:.0f} | - |")
    print()
    for i, r in enumerate(rounds, start=1):
        f, steps = r.figures, len(r.figures.all_acks())
        print(f"SUMMARY round {i}: replicas {len(srv.apps)}, {f.completed}/{r.conversations} "
              f"completed in {r.seconds:.1f} s: {f.completed / r.seconds:.2f} conversations/s, "
              f"{steps / r.seconds:.1f} steps/s; ack p50 {pct(f.all_acks(), 50):.0f} p99 "
              f"{pct(f.all_acks(), 99):.0f} ms; reply p50 {pct(f.all_replies(), 50):.0f} p99 "
              f"{pct(f.all_replies(), 99):.0f} ms; serve CPU "
              f"{1000 * r.serve_cpu / max(1, steps):.2f} ms/step; errors {len(f.errors)}")


def start_py_spy(args: argparse.Namespace, pid: int, index: int
                 ) -> subprocess.Popen[bytes] | None:
    """With ``--py-spy PREFIX``: py-spy sampling ``serve`` through the round, its collapsed
    stacks written to ``PREFIX-<round>.txt`` (``py-spy record --format raw``)."""
    if not args.py_spy:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(pid), "--format", "raw",
                             "--rate", str(args.py_spy_rate), "--nonblocking", "--gil",
                             "--output", f"{args.py_spy}-{index + 1}.txt"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_py_spy(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(2)   # SIGINT: py-spy writes its file and exits
        spy.wait(60)


async def _stats(session: aiohttp.ClientSession, srv: Servers) -> dict[str, Any]:
    async with session.get(f"{srv.fake}/stats") as r:
        stats: dict[str, Any] = await r.json()
    return stats


def code_state() -> str:
    """The commit, and the bot's files that differ from it (read with git, if present)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "bot", "channels", "handlers", "store"],
            cwd=ROOT, text=True, capture_output=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    files = sorted(line[3:] for line in changed if line.strip())
    return f"commit {head}" + (f" with uncommitted changes to {', '.join(files)}" if files
                               else ", no uncommitted changes to the bot")


Loads = tuple[tuple[float, float, float], tuple[float, float, float]]


def _header(args: argparse.Namespace, title: str, loads: Loads) -> None:
    print(f"# {title} (Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {'PostgreSQL' if args.database_url else 'SQLite'}, "
          + (f"{args.replicas} serve replica(s) with the scheduler off, 1 worker, a shared "
             "file:// object store)" if args.replicas else f"scheduler {args.scheduler})"))
    print(f"command: {' '.join(sys.argv)}")
    print(f"code: {code_state()}")
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: "
          "{:.2f} {:.2f} {:.2f}".format(*loads[0], *loads[1]))
    print()


def _receipts(all_figures: list[Figures]) -> None:
    places: defaultdict[str, int] = defaultdict(int)
    for figures in all_figures:
        for place, n in figures.receipt.items():
            places[place] += n
    print("the SMS receipt (\"the password was texted\") came: " + "; ".join(
        f"{n} × {place}" for place, n in sorted(places.items(), key=lambda kv: -kv[1])))


def _latency_table(figures: Figures) -> None:
    print("| measure | n | p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rows: list[tuple[str, list[float]]] = [
        *((f"ack: {k}", v) for k, v in figures.ack_ms.items()),
        ("ack: all", figures.all_acks()),
        *((f"reply: {k}", v) for k, v in figures.reply_ms.items()),
        ("reply: all steps", figures.all_replies()),
        ("whole conversation", [s * 1000 for s in figures.conversation_s]),
    ]
    for name, values in rows:
        print(f"| {name} | {len(values)} | {pct(values, 50):.0f} | {pct(values, 99):.0f} | "
              f"{max(values, default=0):.0f} |")
    print()


def _fake_stats(stats: dict[str, Any]) -> None:
    titles = stats.pop("posts", {})
    print(f"fake Slack saw: {json.dumps(stats, sort_keys=True)}")
    print("posts by first line: " + "; ".join(
        f"{n} × {title!r}" for title, n in sorted(titles.items(), key=lambda kv: -kv[1])))


def _errors(figures: Figures, logged: list[str], warnings: list[str]) -> int:
    total = len(figures.errors) + len(logged)
    late = sum(1 for v in figures.all_acks() if v > 3000)
    print(f"errors: {total} ({len(figures.errors)} in conversations, {len(logged)} "
          "ERROR/traceback lines in the server log)")
    for line in [*figures.errors, *logged][:20]:
        print(f"  {line}")
    print(f"acknowledgements over Slack's 3 s: {late}")
    print(f"WARNING lines in the server log: {len(warnings)}")
    for line in warnings[:10]:
        print(f"  {line}")
    return total


def report_burst(args: argparse.Namespace, warm: Figures, start_rss: int, rounds: list[Round],
                 peak: int, logged: list[str], warnings: list[str],
                 fake_stats: dict[str, Any], loads: Loads, result: dict[str, Any]) -> None:
    _header(args, "Slack load: concurrent whole conversations", loads)
    print(f"warm-up: {warm.completed}/{warm.started} conversations; serve RSS then "
          f"{start_rss / 1024:.1f} MiB")
    print()
    print("| round | at once | completed | wall s | conversations/s | RSS before MiB | "
          "RSS peak in round MiB | RSS after MiB | KiB per conversation, in flight | "
          "KiB per conversation, kept |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i, r in enumerate(rounds, start=1):
        n = r.conversations
        print(f"| {i} | {n} | {r.figures.completed} | {r.seconds:.1f} | "
              f"{r.figures.completed / r.seconds:.1f} | {r.rss_before / 1024:.1f} | "
              f"{r.rss_peak / 1024:.1f} | {r.rss_after / 1024:.1f} | "
              f"{(r.rss_peak - r.rss_before) / n:.1f} | {(r.rss_after - r.rss_before) / n:.1f} |")
    print()
    print("in flight: (peak RSS sampled every 0.25 s during the round - RSS before) / "
          "conversations; kept: (RSS 3 s after the round - RSS before) / conversations")
    print(f"peak RSS (VmHWM) of serve: {peak / 1024:.1f} MiB")
    _fake_stats(fake_stats)
    print()
    for i, r in enumerate(rounds, start=1):
        print(f"round {i}, think time {args.think_seconds:g} s (uniform 0..2x); CPU over "
              f"the round (% of the round's wall time): {r.cpu}:")
        steps = len(r.figures.all_acks())
        print(f"serve's CPU per conversation step: {1000 * r.serve_cpu / max(1, steps):.2f} ms "
              f"({r.serve_cpu:.2f} CPU s over {steps} signed requests)")
        print()
        _latency_table(r.figures)
    failed = sum(len(r.figures.errors) for r in rounds) + len(warm.errors)
    started = warm.started + sum(r.figures.started for r in rounds)
    _receipts([warm, *(r.figures for r in rounds)])
    problems = report_outcome(result, started)
    print()
    every = Figures(errors=[*warm.errors, *(e for r in rounds for e in r.figures.errors),
                            *problems])
    for r in rounds:
        for kind, values in r.figures.ack_ms.items():
            every.ack_ms[kind] += values
    _errors(every, logged, warnings)
    print(f"every conversation completed: {'yes' if not failed else 'NO'}")


# --- soak ------------------------------------------------------------------------------------


def slope_per_minute(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS (KiB) against time (s), in KiB per minute."""
    if len(samples) < 2:
        return 0.0
    xs = [t for t, _ in samples]
    ys = [float(v) for _, v in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx \
        else 0.0


async def soak(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    with run_dir(args, "load-slack-soak-") as tmp:
        async with servers(args, tmp) as srv, client() as session:
            warm = Figures()
            await conversations(session, srv, warm, args.warmup, 0)
            figures = Figures()
            samples: list[tuple[float, int]] = []
            in_flight: list[int] = []
            tasks: set[asyncio.Task[None]] = set()
            cpu = srv.cpu()
            began = now()
            interval = 1 / args.soak_rate

            async def sampler() -> None:
                while True:
                    samples.append((now() - began, status_kib(srv.pid, "VmRSS")))
                    in_flight.append(len(tasks))
                    print(f"  t={samples[-1][0]:6.0f} s  RSS {samples[-1][1] / 1024:7.1f} MiB  "
                          f"started {figures.started}  completed {figures.completed}  "
                          f"errors {len(figures.errors)}  in flight {len(tasks)}  "
                          f"load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
                    await asyncio.sleep(args.sample_seconds)

            sampling = asyncio.create_task(sampler())
            for i in itertools.count():
                at = began + i * interval
                if at - began >= args.soak_seconds:
                    break
                await asyncio.sleep(max(0.0, at - now()))
                task = asyncio.create_task(Conversation(session, srv, figures,
                                                        args.think_seconds).run())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            send_seconds = now() - began
            if tasks:
                await asyncio.wait(set(tasks), timeout=STEP_TIMEOUT * 2)
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            used = cpu_share(cpu, srv.cpu(), now() - began)
            final = await settle_rss(srv.pid)
            samples.append((now() - began, final))
            peak = status_kib(srv.pid, "VmHWM")
            logged = server_errors(srv.log)
            warnings = server_warnings(srv.log)
            fake_stats = await _stats(session, srv)
            result = await outcome(srv)
            result["probe"] = read_probe(srv.probe, began)
    report_soak(args, warm, figures, samples, in_flight, send_seconds, peak, logged,
                warnings, fake_stats, (load_before, os.getloadavg()), used, result)


def report_soak(args: argparse.Namespace, warm: Figures, figures: Figures,
                samples: list[tuple[float, int]], in_flight: list[int], send_seconds: float,
                peak: int, logged: list[str], warnings: list[str],
                fake_stats: dict[str, Any], loads: Loads, cpu: str,
                result: dict[str, Any]) -> None:
    _header(args, "Slack soak: a steady rate of whole conversations", loads)
    print(f"{args.soak_rate:g} new conversations/s for {send_seconds:.0f} s: "
          f"{figures.started} started, {figures.completed} completed; in flight at a "
          f"sample: median {statistics.median(in_flight) if in_flight else 0:g}, "
          f"max {max(in_flight, default=0)}")
    print(f"CPU over the soak (% of its wall time): {cpu}")
    print()
    steady = [(t, v) for t, v in samples if t >= args.soak_warmup]
    first = [v for t, v in steady if t < args.soak_warmup + 60]
    last = [v for t, v in steady if t >= samples[-1][0] - 60]
    slope = slope_per_minute(steady)
    per_minute = figures.started / max(1.0, send_seconds / 60)
    print("| t s | RSS MiB |")
    print("| ---: | ---: |")
    for t, v in samples:
        print(f"| {t:.0f} | {v / 1024:.1f} |")
    print()
    values = [v for _, v in samples]
    print(f"RSS: first sample {values[0] / 1024:.1f} MiB, min {min(values) / 1024:.1f}, "
          f"max {max(values) / 1024:.1f}, last {values[-1] / 1024:.1f}; "
          f"peak (VmHWM) {peak / 1024:.1f} MiB")
    if first and last:
        drift = statistics.fmean(last) - statistics.fmean(first)
        print(f"after the {args.soak_warmup:g} s warm-up: slope {slope:+.1f} KiB/min "
              f"({slope / per_minute if per_minute else 0:+.2f} KiB per conversation); drift "
              f"(last minute's mean minus the first minute's) {drift / 1024:+.1f} MiB")
    _fake_stats(fake_stats)
    print()
    _latency_table(figures)
    _receipts([warm, figures])
    report_probe(result.get("probe", []))
    problems = report_outcome(result, warm.started + figures.started)
    print()
    _errors(Figures(ack_ms=figures.ack_ms, errors=[*warm.errors, *figures.errors, *problems]),
            logged, warnings)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=10,
                        help="conversations before the first RSS reading")
    parser.add_argument("--think-seconds", type=float, default=0.0,
                        help="mean pause between a reply and the next step (uniform 0..2x)")
    parser.add_argument("--soak-seconds", type=float, default=0.0)
    parser.add_argument("--soak-rate", type=float, default=1.0,
                        help="new conversations per second in the soak")
    parser.add_argument("--soak-warmup", type=float, default=60.0)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--scheduler", choices=("on", "off"), default="on")
    parser.add_argument("--database-url")
    parser.add_argument("--memory-probe", action="store_true",
                        help="soak: log serve's RSS, gc-tracked objects and SQLite's memory")
    parser.add_argument("--malloc-trim", action="store_true",
                        help="soak: as --memory-probe, and call malloc_trim(0) at each reading")
    parser.add_argument("--probe-seconds", type=float, default=60.0)
    parser.add_argument("--keep", metavar="DIR",
                        help="run in DIR and leave it (the processes' logs, the bot's var/)")
    parser.add_argument("--py-spy", metavar="PREFIX",
                        help="sample serve with py-spy through each round (PREFIX-N.txt, "
                             "collapsed stacks)")
    parser.add_argument("--cprofile", metavar="PREFIX",
                        help="profile serve's event loop thread (CPU clock) through each "
                             "round (PREFIX-N.prof)")
    parser.add_argument("--py-spy-rate", type=int, default=250,
                        help="py-spy samples per second")
    parser.add_argument("--replicas", type=int, default=0, metavar="N",
                        help="N serve replicas (scheduler off) and one worker on the same "
                             "PostgreSQL database and file:// object store; conversations "
                             "round-robin (needs --database-url)")
    parser.add_argument("--fake-api", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replicas and (not args.database_url or args.soak_seconds > 0 or args.cprofile
                          or args.py_spy or args.memory_probe or args.malloc_trim):
        parser.error("--replicas needs --database-url, and is for bursts without "
                     "--cprofile, --py-spy or the memory probe")
    if args.cprofile:
        args.cprofile = str(Path(args.cprofile).resolve())
    if args.fake_api:
        asyncio.run(run_fake(args.fake_api))
    elif args.soak_seconds > 0:
        asyncio.run(soak(args))
    else:
        asyncio.run(burst(args))


if __name__ == "__main__":
    main()
