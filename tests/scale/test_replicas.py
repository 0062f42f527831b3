"""Scale-out proven with real processes: three `safehaven serve` replicas (a, b, c; the
scheduler off) and one `safehaven worker`, each with a private var/, sharing one PostgreSQL
database and one object store, run once on a shared ``file://`` folder and once on an S3
server. Every step of a conversation is sent to a different replica, as a load balancer
would: each flow completes, nothing is done twice, and no plaintext of the files shared is
left in the store or on any host's disk.

One deployment serves the whole module (per store); each flow has its own sender, so flows
do not see one another. The replicas killed in (h) and (i) are others, started for them.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from bot.policy import load_policy
from handlers.services import Services
from store.db import alembic_config
from store.models import AuditRecord, PortalLink, Transfer
from tests.reliability.test_faults import wait_for
from tests.scenarios.test_every_channel import (
    CONSENT,
    PURPOSE,
    RECIPIENT,
    opens_with,
    texted_password,
)
from tests.support.chat import REFERENCE, portal_link_in, reference_in
from tests.support.core import PDF
from tests.support.fake_slack import FakeSlack
from tests.support.fake_twilio import FakeTwilio
from tests.support.replicas import (
    GRACE,
    LEASE,
    Replicas,
    ReplicaWorkspace,
    StoreKind,
    fresh_database,
    observer,
    plaintext_in,
    shared_env,
    slack_policy_file,
    taken_over,
)
from tests.support.s3 import moto_s3
from tests.support.slack import APPROVERS, SlackChatUser

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]
SERVE = ("a", "b", "c")
RESTARTED = "restarted while it was handling your message"


@dataclass
class Deployment:
    replicas: Replicas
    ws: ReplicaWorkspace
    slack: FakeSlack
    twilio: FakeTwilio
    svc: Services
    store_env: dict[str, str]
    sent: list[bytes] = field(default_factory=list)  # every file's content, for the scan
    marks: dict[str, int] = field(default_factory=dict)

    def no_tracebacks(self) -> None:
        """No host has written a traceback since the test began."""
        assert self.replicas.tracebacks(self.marks) == {}

    def case_file(self, name: str) -> tuple[str, bytes]:
        """A small PDF holding random bytes no store or disk may show in clear."""
        secret = os.urandom(24 * 1024)
        self.sent.append(secret)
        return name, PDF[:9] + b"%" + secret + b"\n" + PDF[9:]

    def sender(self, slack_id: str) -> SlackChatUser:
        return SlackChatUser(self.ws, slack_id)


@pytest_asyncio.fixture(scope="module", loop_scope="module",
                        params=list(StoreKind), ids=[str(kind) for kind in StoreKind])
async def deployment(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    kind: StoreKind = request.param
    root = tmp_path_factory.mktemp(f"replicas-{kind}")
    policy = slack_policy_file(root)
    async with fresh_database() as database_url:
        slack, twilio = await FakeSlack().start(), await FakeTwilio().start()
        with moto_s3() as s3:
            if kind is StoreKind.S3:
                store, store_env = f"s3://{s3.bucket()}/safehaven", s3.env
            else:
                store, store_env = (root / "shared-objects").as_uri(), {}
            replicas = Replicas(root, database_url, store,
                                shared_env(slack=slack, twilio=twilio, policy=policy,
                                           s3=store_env))
            try:
                # (g) three replicas at once on an empty database, with the worker.
                await replicas.start(*SERVE, worker=True)
                svc = observer(replicas, load_policy(policy))
                ws = ReplicaWorkspace(replicas, slack, svc)
                yield Deployment(replicas, ws, slack, twilio, svc, store_env)
                await svc.db.close()
            finally:
                slack.release.set()
                await replicas.stop()
                await slack.close()
                await twilio.close()


@pytest.fixture(autouse=True)
def clean_hosts(deployment: Deployment) -> None:
    """Where each host's error output stood when the test began (see ``no_tracebacks``)."""
    deployment.marks = deployment.replicas.marks()


Step = Callable[[], Awaitable[None]]


async def hop(ws: ReplicaWorkspace, hosts: itertools.cycle[str], steps: list[Step]) -> None:
    """Each step on the next replica of ``hosts``."""
    for step in steps:
        ws.to(next(hosts))
        await step()


async def up_to_summary(d: Deployment, alice: SlackChatUser, hosts: itertools.cycle[str], *,
                        classification: str = "CONTROLLED",
                        delivery: str = "Encrypted archive", password: str = "SMS now") -> None:
    """Answer every question, each answer on the next replica; ends at the summary."""
    await hop(d.ws, hosts, [
        lambda: alice.choose(classification),
        lambda: alice.choose_several("Contact details only", "Other personal data"),
        lambda: alice.fill(RECIPIENT),
        lambda: alice.answer(PURPOSE), lambda: alice.choose("UK GDPR Art 6(1)(e) public task"),
        lambda: alice.fill(CONSENT), lambda: alice.choose(delivery),
        lambda: alice.choose(password)])
    assert await alice.current_question() == "confirm", alice.text


async def share(d: Deployment, alice: SlackChatUser, *names: str, on: str = "a") -> str:
    """Files DMed to replica ``on``; returns the transfer's reference."""
    d.ws.to(on)
    await alice.person.send_files(*(d.case_file(n) for n in names))
    return reference_in(alice.text)


async def texted(d: Deployment, reference: str) -> str:
    """The password of the one SMS for ``reference``, waited for (the replica that handled
    the step that made it due sends it at once; the worker would retry it)."""
    await wait_for(lambda: d.twilio.sent_to(reference) >= 1, 20, f"the SMS for {reference}",
                   every=0.05)
    await asyncio.sleep(3 * 0.2)  # a few more worker ticks: a second send would show
    assert d.twilio.sent_to(reference) == 1
    return texted_password(d.twilio, reference)


async def handed_back(d: Deployment, alice: SlackChatUser, reference: str) -> bytes:
    await wait_for(lambda: any(u.get("channel") == alice.person.dm and u.get("data")
                               and u["filename"] == f"{reference}.zip"
                               for u in d.slack.uploads.values()),
                   20, f"the archive of {reference}", every=0.05)
    return await alice.archive(reference)


async def test_g_three_replicas_started_at_once_on_an_empty_database_all_serve(
        deployment: Deployment) -> None:
    replicas = deployment.replicas
    assert all(replicas[name].alive for name in (*SERVE, "worker"))
    for name in SERVE:
        async with aiohttp.ClientSession() as session, \
                session.get(replicas[name].base + "/readyz") as response:
            assert response.status == 200, name
    head = ScriptDirectory.from_config(alembic_config(replicas.database_url)).get_current_head()
    async with deployment.svc.db.read() as db:
        versions = list((await db.execute(text("SELECT version_num FROM alembic_version")
                                          )).scalars())
    assert versions == [head]
    for host in replicas.hosts.values():
        assert "pg_type_typname_nsp_index" not in host.errors()
    assert replicas.tracebacks() == {}


async def test_a_file_on_a_answers_on_b_approval_on_c_password_sent_once(
        deployment: Deployment) -> None:
    d = deployment
    alice, boss = d.sender("USCALEA1"), d.sender(APPROVERS[0].removeprefix("slack:"))
    reference = await share(d, alice, "referral.pdf", on="a")
    await up_to_summary(d, alice, itertools.cycle("bc"), classification="RESTRICTED",
                        password="SMS once receipt is confirmed")
    d.ws.to("b")
    await alice.choose("Confirm and send")
    assert f"Transfer {reference} needs authorising" in alice.text
    d.ws.to("c")
    await boss.approve(reference)
    archive = await handed_back(d, alice, reference)
    assert f"approved transfer {reference}" in alice.text, alice.text
    assert d.twilio.sent_to(reference) == 0  # not until the recipient has the files
    d.ws.to("a")
    await alice.say(f"received {reference}")
    password = await texted(d, reference)
    assert "document-1.pdf" in opens_with(archive, password)
    assert password not in alice.text
    d.no_tracebacks()


async def test_b_no_approval_file_on_a_confirm_on_b(deployment: Deployment) -> None:
    d = deployment
    alice = d.sender("USCALEB1")
    reference = await share(d, alice, "chronology.pdf", on="a")
    await up_to_summary(d, alice, itertools.cycle("cab"))
    d.ws.to("b")
    await alice.choose("Confirm and send")
    assert f"Subject: CONFIDENTIAL {reference}" in alice.text, alice.text
    archive = await handed_back(d, alice, reference)
    assert "document-1.pdf" in opens_with(archive, await texted(d, reference))
    d.no_tracebacks()


async def test_c_two_files_one_on_a_one_on_b_packaged_in_one_transfer(
        deployment: Deployment) -> None:
    d = deployment
    alice = d.sender("USCALEC1")
    d.ws.to("a")
    assert await alice.person.send_files(d.case_file("first.pdf"), settle=False) == 200
    d.ws.to("b")
    assert await alice.person.send_files(d.case_file("second.pdf"), settle=False) == 200
    await d.ws.settle()
    references = set(REFERENCE.findall(alice.text))
    assert len(references) == 1, alice.text
    (reference,) = references
    await up_to_summary(d, alice, itertools.cycle("cba"))
    d.ws.to("c")
    await alice.choose("Confirm and send")
    archive = await handed_back(d, alice, reference)
    names = opens_with(archive, await texted(d, reference))
    assert {"document-1.pdf", "document-2.pdf"} <= set(names), names
    d.no_tracebacks()


async def test_d_archive_ref_on_b_for_an_archive_made_on_a(deployment: Deployment) -> None:
    d = deployment
    alice = d.sender("USCALED1")
    reference = await share(d, alice, "minutes.pdf", on="a")
    await up_to_summary(d, alice, itertools.cycle("a"), password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    first = await handed_back(d, alice, reference)
    d.ws.to("b")
    await alice.say(f"archive {reference}")
    again = [u for u in d.slack.uploads.values() if u.get("channel") == alice.person.dm
             and u["filename"] == f"{reference}.zip" and u.get("data")]
    assert len(again) == 2, alice.text[-600:]
    assert bytes(again[-1]["data"]) == first
    d.no_tracebacks()


async def test_e_portal_link_from_a_download_on_b_counted_once(
        deployment: Deployment) -> None:
    d = deployment
    alice = d.sender("USCALEE1")
    reference = await share(d, alice, "plan.pdf", on="a")
    await up_to_summary(d, alice, itertools.cycle("a"), delivery="Secure download link",
                        password="SMS once receipt is confirmed")
    await alice.choose("Confirm and send")
    link = urlsplit(portal_link_in(alice.text)).path
    base = d.replicas["b"].base
    async with aiohttp.ClientSession() as session:
        async with session.get(base + link) as preview:
            assert preview.status == 200 and reference in await preview.text()
        async with session.post(base + link) as download:
            assert download.status == 200, await download.text()
            archive = await download.read()
    told = f"Transfer {reference} was downloaded"
    await wait_for(lambda: told in alice.text, 20, "the sender told", every=0.05)
    assert "document-1.pdf" in opens_with(archive, await texted(d, reference))
    await asyncio.sleep(0.5)
    assert alice.text.count(told) == 1, alice.text
    assert await audited(d, reference, "downloaded") == 1
    async with d.svc.db.read() as session:  # the one row every replica counts in
        assert await session.scalar(select(PortalLink.downloads).where(
            PortalLink.reference == reference)) == 1
    d.no_tracebacks()


async def audited(d: Deployment, reference: str, action: str) -> int:
    async with d.svc.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.reference == reference, AuditRecord.action == action)) or 0)


async def test_f_cancel_on_b_deletes_what_a_stored_and_no_plaintext_is_left(
        deployment: Deployment) -> None:
    d = deployment
    alice = d.sender("USCALEF1")
    before = await stored(d)
    at_summary = await share(d, alice, "notes.pdf", on="a")
    await up_to_summary(d, alice, itertools.cycle("a"))
    uploads = await stored(d) - before
    assert uploads, "the upload is kept in the shared store meanwhile"
    d.ws.to("b")
    await alice.choose("Cancel the transfer")
    assert f"Transfer {at_summary} is cancelled" in alice.text
    await wait_for(functools.partial(all_gone, d, uploads), 20, "the upload deleted",
                   every=0.1)

    bob = d.sender("USCALEF2")
    before = await stored(d)
    sent = await share(d, bob, "letter.pdf", on="a")
    await up_to_summary(d, bob, itertools.cycle("a"), password="SMS once receipt is confirmed")
    await bob.choose("Confirm and send")
    await handed_back(d, bob, sent)
    kept = await stored(d) - before
    assert kept, "the archive is kept in the shared store until the password goes"
    d.ws.to("b")
    await bob.say(f"cancel {sent}")
    await bob.choose("Yes, cancel")  # asked to confirm, answered on replica b too
    assert "cancelled" in bob.text, bob.text
    await wait_for(functools.partial(all_gone, d, kept), 20, "the archive deleted", every=0.1)

    found = await plaintext_in(d.replicas.object_store, d.store_env, d.replicas.var_dirs,
                               d.sent)
    assert found == []
    d.no_tracebacks()


async def stored(d: Deployment) -> set[str]:
    """Every key in the shared store, listed from the test process."""
    return {str(info.key) async for info in d.svc.objects.list()}


async def all_gone(d: Deployment, keys: set[str]) -> bool:
    return not keys & await stored(d)


async def test_h_a_killed_replica_s_inbox_is_taken_over_and_its_sender_told_once(
        deployment: Deployment) -> None:
    d = deployment
    await d.replicas.start("d")
    alice = d.sender("USCALEH1")
    content = os.urandom(2 * 1024 * 1024)
    url = d.slack.add_file(content, stall_after=512 * 1024)
    event = alice.person.message_event("", subtype="file_share", files=[
        {"id": "F00SCALE", "name": "case-notes.pdf", "size": len(content),
         "mimetype": "application/pdf", "url_private_download": url}])
    d.ws.to("d")
    assert await d.ws.event(event, settle=False) == 200
    await wait_for(lambda: d.slack.stalled == 1, 30, "d's download to be under way")
    await d.replicas.kill("d")
    d.slack.release.set()

    await wait_for(lambda: RESTARTED in alice.text, LEASE * 5, "a live replica to take over",
                   every=0.05)
    await d.ws.settle()
    assert alice.text.count(RESTARTED) == 1, alice.text
    assert sum(taken_over(d.replicas[name]) for name in SERVE) == 1
    async with d.svc.db.read() as session:  # not acted on twice: no transfer was begun
        assert await session.scalar(select(func.count()).select_from(Transfer).where(
            Transfer.sender_id == alice.user_id)) == 0
    d.no_tracebacks()


BIG = 4 * 1024 * 1024  # packaging takes a moment; recovery waits GRACE + 1 s per MB


async def status_of(d: Deployment, reference: str) -> str | None:
    async with d.svc.db.read() as session:
        return await session.scalar(select(Transfer.status).where(
            Transfer.reference == reference))


async def test_i_a_replica_killed_mid_packaging_is_taken_over_and_ready_once(
        deployment: Deployment) -> None:
    d = deployment
    await d.replicas.start("e")
    alice = d.sender("USCALEI1")
    secret = os.urandom(BIG)
    d.sent.extend(secret[at:at + 4096] for at in range(0, BIG, BIG // 8))
    d.ws.to("e")
    start = await stored(d)
    await alice.person.send_files(("bundle.pdf", PDF[:9] + b"%" + secret + b"\n" + PDF[9:]))
    reference = reference_in(alice.text)
    await up_to_summary(d, alice, itertools.cycle("e"), password="SMS once receipt is confirmed")
    before = await stored(d)
    sealed = {k for k in before - start if k.startswith("uploads/")}
    assert sealed, "the sealed upload is in the shared store until packaged"
    status, body = await alice.person.click("Confirm and send", settle=False)
    assert status == 200, body
    statuses: list[str | None] = []

    async def packaging() -> bool:
        statuses.append(await status_of(d, reference))
        return statuses[-1] == "packaging"

    await wait_for(packaging, 30, f"{reference} to be packaging on e", every=0.01)
    await d.replicas.kill("e")
    assert await status_of(d, reference) == "packaging", "e finished before it was killed"

    told = f"Subject: CONFIDENTIAL {reference}"
    await wait_for(lambda: told in alice.text, GRACE + BIG / 1e6 + 30,
                   "the worker to take the packaging over", every=0.1)
    await d.ws.settle()
    await asyncio.sleep(0.6)  # a few more worker passes: a second packaging would show
    assert alice.text.count(told) == 1, alice.text[-2000:]
    assert len([u for u in d.slack.uploads.values() if u.get("channel") == alice.person.dm
                and u["filename"] == f"{reference}.zip" and u.get("data")]) == 1
    async with d.svc.db.read() as session:
        transfer = (await session.scalars(select(Transfer).where(
            Transfer.reference == reference))).one()
    assert transfer.status == "ready"
    assert await audited(d, reference, "packaged") == 1
    assert await audited(d, reference, "packaging_resumed") == 1
    assert await audited(d, reference, "packaging_failed") == 0
    new = await stored(d) - before
    assert [k for k in new if k.startswith("archives/")] == [f"archives/{reference}.zip"]
    assert not sealed & await stored(d), "the sealed upload is deleted once packaged"
    found = await plaintext_in(d.replicas.object_store, d.store_env, d.replicas.var_dirs,
                               d.sent)
    assert found == []
    d.no_tracebacks()
