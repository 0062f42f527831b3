"""Several hosts for the scale-out tests: N real `safehaven serve` replicas and one
`safehaven worker`, each a separate process with its own private ``SAFEHAVEN_VAR_DIR`` (its
own disk: each runs in a mount namespace of its own, where no other host's var/ exists),
sharing only one fresh PostgreSQL database, one object store (a ``file://`` folder or an S3
bucket on moto's server) and the server key. The serve replicas run with
``SAFEHAVEN_SCHEDULER=off``; only the worker runs the scheduler. Slack and Twilio are the
fakes of :mod:`tests.support`, as a load balancer would see them: each signed Slack request
goes to the replica a test names (:meth:`ReplicaWorkspace.to`), so the steps of one
conversation can land on different hosts. :meth:`Replicas.kill` is a host lost (SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.objects import ObjectKey
from bot.policy_rules import Policy
from bot.settings import load_settings
from bot.vault import Vault, _decode_key, generate_key
from channels.console.transport import ConsoleTransport
from handlers.services import Services
from store.db import Database
from store.objects import open_object_store
from store.repositories import slack_inbox
from tests.reliability.test_faults import wait_for
from tests.support.core import RecordingNotifier
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.support.slack import APPROVERS, SECRET, Workspace, signed

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("SAFEHAVEN_TEST_DATABASE_URL", "")
PUBLIC = "https://safehaven.example.gov.uk"
LEASE = 2  # seconds (SLACK_INBOX_LEASE_SECONDS): a dead replica's messages wait this long
GRACE = 2  # seconds (SAFEHAVEN_PACKAGING_GRACE_SECONDS): and its packaging, plus 1 s per MB
QUIET = 0.3  # seconds with no new call to the fake Slack: the replicas have settled
WORKER_FROM, REPLICA_FROM = "+441632960002", "+441632960001"  # TWILIO_FROM_NUMBER
FIRST_CALL = 10.0  # seconds a replica may take to show something for a request
SHOWN = frozenset({"chat.postMessage", "chat.postEphemeral", "views.open",
                   "files.completeUploadExternal"})  # fake Slack calls a person sees
_FOREIGN = ("SAFEHAVEN_", "TWILIO_", "SLACK_", "TEAMS_", "AWS_")


class StoreKind(StrEnum):
    """The object store every replica shares."""

    FILE = "file"  # one file:// folder, as a shared volume would be
    S3 = "s3"  # a bucket on an S3 server


async def _admin(sql: str) -> None:
    url = make_url(PG_URL)
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username,
                                 password=url.password, database=url.database, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """An empty PostgreSQL database (no schema: the replicas migrate it), dropped after.
    Skips when ``SAFEHAVEN_TEST_DATABASE_URL`` is unset or PostgreSQL is not reachable."""
    if (reason := private_disks()) is not None:
        pytest.skip(f"each replica needs a private disk: {reason}")
    if not PG_URL.startswith("postgresql"):
        pytest.skip("PostgreSQL only (the replicas share one database): "
                    "set SAFEHAVEN_TEST_DATABASE_URL to run")
    name = f"sh_scale_{secrets.token_hex(6)}"
    try:
        await _admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        url = make_url(PG_URL)
        pytest.skip(f"PostgreSQL at {url.host}:{url.port} not reachable "
                    f"({type(exc).__name__})")
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Run inside a mount namespace of its own: the folder of every host's var/ is hidden under an
# empty tmpfs and only this host's own disk is bound back in, so a path on another host's
# disk (stored in the database, say) is not there, as on separate machines.
_PRIVATE_DISK = ('mount -t tmpfs tmpfs "$HOSTS" && mkdir -p "$VAR" '
                 '&& mount --bind "$DISK" "$VAR" && exec "$@"')


@cache
def private_disks() -> str | None:
    """Why each host cannot be given a private disk here (None when it can): that needs
    ``unshare --mount`` (root, or a user namespace), as CI has."""
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               "mount -t tmpfs tmpfs /mnt && true"],
                              capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare not usable ({type(exc).__name__})"
    return None if done.returncode == 0 else \
        f"unshare --mount refused: {done.stderr.decode(errors='replace').strip()[:200]}"


@dataclass
class Host:
    """One process: a serve replica (with a port) or the worker. Its var/ is
    ``SAFEHAVEN_VAR_DIR`` inside its own namespace and :attr:`disk` from outside."""

    name: str
    env: dict[str, str]
    disk: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def var_dir(self) -> Path:
        """This host's disk as the test process sees it."""
        return self.disk

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['SAFEHAVEN_PORT']}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def errors(self) -> str:
        return (self.disk / "process-logs" / f"{self.command}.err").read_text(errors="replace")

    @property
    def command(self) -> str:
        return "worker" if self.name == "worker" else "serve"

    async def spawn(self) -> None:
        """Start the process on its private disk; its output goes to process-logs/ there."""
        logs = self.disk / "process-logs"
        logs.mkdir(parents=True, exist_ok=True)
        hosts = Path(self.env["SAFEHAVEN_VAR_DIR"]).parents[1]
        hosts.mkdir(parents=True, exist_ok=True)  # the mount point, empty out here
        env = {**self.env, "HOSTS": str(hosts),
               "VAR": self.env["SAFEHAVEN_VAR_DIR"], "DISK": str(self.disk)}
        with (logs / f"{self.command}.out").open("ab") as out, \
                (logs / f"{self.command}.err").open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                "unshare", "--mount", "--propagation", "private", "sh", "-c", _PRIVATE_DISK,
                "sh", sys.executable, "-m", "bot.app.cli", self.command,
                env=env, cwd=ROOT, stdout=out, stderr=err)


@dataclass
class Replicas:
    """The hosts of one deployment; ``await start(...)`` brings them up together."""

    root: Path
    database_url: str
    object_store: str
    shared: dict[str, str]
    hosts: dict[str, Host] = field(default_factory=dict)

    def _host(self, name: str, *, scheduler: bool) -> Host:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        env.update(self.shared, SAFEHAVEN_VAR_DIR=str(self.root / "hosts" / name / "var"),
                   SAFEHAVEN_DATABASE_URL=self.database_url,
                   SAFEHAVEN_OBJECT_STORE=self.object_store, SAFEHAVEN_PORT=str(free_port()),
                   SAFEHAVEN_SCHEDULER="on" if scheduler else "off")
        if scheduler:  # so a test can tell the worker's sends from a replica's
            env["TWILIO_FROM_NUMBER"] = WORKER_FROM
        return Host(name, env, self.root / "disks" / name)

    async def start(self, *names: str, worker: bool = False) -> None:
        """Start serve replicas ``names`` (and the worker) at once; wait until each serves."""
        new = [self._host(name, scheduler=False) for name in names]
        if worker:
            new.append(self._host("worker", scheduler=True))
        for host in new:
            self.hosts[host.name] = host
        await asyncio.gather(*(host.spawn() for host in new))
        await asyncio.gather(*(self._ready(h) for h in new if h.name != "worker"))

    async def _ready(self, host: Host) -> None:
        async def ready() -> bool:
            try:
                async with aiohttp.ClientSession() as session, \
                        session.get(host.base + "/readyz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                assert host.alive, f"{host.name} exited:\n{host.errors()[-3000:]}"
                return False

        await wait_for(ready, 60, f"replica {host.name} to be ready", every=0.1)

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    @property
    def var_dirs(self) -> list[Path]:
        return [h.var_dir for h in self.hosts.values()]

    async def kill(self, name: str) -> None:
        """The host lost at once: SIGKILL, no shutdown of any kind."""
        proc = self.hosts[name].proc
        assert proc is not None and proc.returncode is None
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    async def stop(self) -> None:
        live = [h.proc for h in self.hosts.values() if h.proc and h.proc.returncode is None]
        for proc in live:
            proc.send_signal(signal.SIGINT)
        await asyncio.gather(*(asyncio.wait_for(p.wait(), 30) for p in live),
                             return_exceptions=True)
        for proc in live:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    def marks(self) -> dict[str, int]:
        """How much error output each host has written so far (for :meth:`tracebacks`)."""
        return {h.name: len(h.errors()) for h in self.hosts.values() if h.proc is not None}

    def tracebacks(self, since: dict[str, int] | None = None) -> dict[str, str]:
        """Each host's error output (after ``since``) where it holds a traceback."""
        return {h.name: err[-3000:] for h in self.hosts.values() if h.proc is not None
                if "Traceback" in (err := h.errors()[(since or {}).get(h.name, 0):])}


def observer(replicas: Replicas, policy: Policy) -> Services:
    """Services in the test process on the replicas' database and object store, to read
    what they did (conversation steps, the inbox); it never serves anything."""
    env = {**os.environ, **replicas.shared, "SAFEHAVEN_VAR_DIR": str(replicas.root / "test"),
           "SAFEHAVEN_DATABASE_URL": replicas.database_url,
           "SAFEHAVEN_OBJECT_STORE": replicas.object_store}
    settings = load_settings(env)
    assert settings.secret_key
    return Services(settings=settings, policy=policy, db=Database(settings.database_url),
                    vault=Vault(_decode_key(settings.secret_key)),
                    notifier=RecordingNotifier(),
                    transport=ConsoleTransport(outbox=settings.outbox_path, production=False),
                    objects=open_object_store(replicas.object_store, env=env))


def slack_policy_file(folder: Path) -> Path:
    """The default policy with the Slack approvers of :mod:`tests.support.slack` listed for
    every sender, written under ``folder`` for the replicas' ``SAFEHAVEN_POLICY``."""
    default = Path(__file__).resolve().parents[2] / "bot" / "policies" / "default.toml"
    listed = ", ".join(f'"{a}"' for a in APPROVERS)
    text, count = re.subn(r'^"\*" = \[.*\]$', f'"*" = [{listed}]',
                          default.read_text(encoding="utf-8"), flags=re.M)
    assert count == 1
    path = folder / "policy-slack.toml"
    path.write_text(text, encoding="utf-8")
    return path


def shared_env(*, slack: FakeSlack, twilio: FakeTwilio, policy: Path,
               s3: dict[str, str] | None = None) -> dict[str, str]:
    """What every host of one deployment is given alike: the key, the fakes, the policy."""
    return {
        "SAFEHAVEN_SECRET_KEY": generate_key(), "SAFEHAVEN_LOG_LEVEL": "INFO",
        "SAFEHAVEN_SCHEDULER_INTERVAL": "0.2", "SAFEHAVEN_POLICY": str(policy),
        "SAFEHAVEN_PUBLIC_URL": PUBLIC,
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": f"{slack.url}/api/", "SLACK_INBOX_LEASE_SECONDS": str(LEASE),
        "SAFEHAVEN_PACKAGING_GRACE_SECONDS": str(GRACE),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": REPLICA_FROM, "TWILIO_API_URL": twilio.url,
        **(s3 or {})}


class ReplicaWorkspace(Workspace):
    """The Slack workspace of :mod:`tests.support.slack`, its requests sent to real replicas:
    ``ws.to("b")`` routes what follows to replica b, as a load balancer might. Settling
    waits until the database's inbox is empty and the fake Slack has been quiet a moment."""

    def __init__(self, replicas: Replicas, fake: FakeSlack, svc: Services) -> None:
        # Not Workspace.__init__: there is no in-process app or channel here.
        self.replicas = replicas
        self.fake = fake
        self.svc = svc
        self.target = "a"
        self.posted_at = 0  # how many calls the fake Slack had when the last request went

    def to(self, name: str) -> ReplicaWorkspace:
        assert self.replicas[name].alive, f"replica {name} is not running"
        self.target = name
        return self

    async def post(self, body: str, content_type: str, *, headers: dict[str, str] | None = None,
                   sign: bool = True, stamp: int | None = None, secret: str = SECRET
                   ) -> tuple[int, str]:
        all_headers = {"Content-Type": content_type, **(signed(body, secret=secret, stamp=stamp)
                                                         if sign else {}), **(headers or {})}
        url = self.replicas[self.target].base + "/slack/events"
        self.posted_at = len(self.fake.calls)
        async with aiohttp.ClientSession() as session, \
                session.post(url, data=body.encode(), headers=all_headers) as response:
            return response.status, await response.text()

    async def settle(self) -> None:
        """Wait for the work the last request began: until the fake Slack has been sent
        something for the person to see since (a message, a form, a file: what every step
        here leads to; at most :data:`FIRST_CALL` seconds), then until it has been quiet for
        :data:`QUIET` with the inbox empty."""
        db = self.svc.db
        start = time.monotonic()
        while time.monotonic() - start < FIRST_CALL:
            if any(call.method in SHOWN for call in self.fake.calls[self.posted_at:]):
                break
            await asyncio.sleep(0.02)
        seen, since = -1, time.monotonic()
        while time.monotonic() - start < 60:
            count = len(self.fake.calls)
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since >= QUIET and not await slack_inbox.held(db):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the replicas never settled")


async def plaintext_in(store_url: str, env: dict[str, str], folders: Iterable[Path],
                       needles: Iterable[bytes]) -> list[str]:
    """Where any of ``needles`` is found: every object in the store and every file under
    ``folders`` (names of what holds one; empty when nothing does)."""
    wanted = [n for n in needles if n]
    found: list[str] = []
    store = open_object_store(store_url, env={**os.environ, **env})
    keys = [info.key async for info in store.list()]  # each read to its end
    for key in keys:
        data = b"".join([chunk async for chunk in store.get(ObjectKey(key))])
        if any(n in data for n in wanted):
            found.append(f"object {key}")
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file() and any(n in path.read_bytes() for n in wanted):
                found.append(str(path))
    return found


def taken_over(host: Host) -> int:
    """How many Slack messages ``host`` said it took over from a dead replica."""
    return sum(map(int, re.findall(r"taking over (\d+) Slack message", host.errors())))
