"""Files sent to the bot in Slack: size checked before and during the download, the bot
token kept to Slack's hosts, redirects held to the allow-list, and download failures told to
the sender."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from bot.egress import parse_host_rules
from store.models import Transfer
from tests.support.core import PDF
from tests.support.fake_slack import TOKEN
from tests.support.objects import upload_objects
from tests.support.slack import Workspace


async def transfers(ws: Workspace) -> int:
    async with ws.svc.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Transfer)) or 0)


async def uploads_left(ws: Workspace) -> list[str]:
    """Uploads kept anywhere: staged on the host (plaintext) or sealed in the store."""
    staged = [str(p) for p in ws.svc.settings.uploads_dir.rglob("*") if p.is_file()]
    return staged + [str(k) for k in await upload_objects(ws.svc)]


async def test_too_large_is_refused_before_downloading(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    limit = workspace.svc.policy.max_file_bytes
    await workspace.event(alice.file_event(("huge.iso", b"x" * 10), declared=limit + 1))
    assert not workspace.fake.called("download")
    assert "huge.iso is 2.0 GB" in alice.text and "the limit for one file is 2.0 GB" in alice.text
    assert await transfers(workspace) == 0


async def test_larger_than_announced_is_stopped_while_streaming(workspace: Workspace) -> None:
    workspace.svc.policy = dataclasses.replace(workspace.svc.policy, max_file_bytes=1000)
    alice = workspace.user("UALICE01")
    await workspace.event(alice.file_event(("sneaky.txt", b"y" * 5000), declared=10))
    assert len(workspace.fake.called("download")) == 1
    assert "sneaky.txt is more than 1000 bytes" in alice.text
    assert await transfers(workspace) == 0
    assert await uploads_left(workspace) == []


async def test_one_good_file_and_one_refused_start_a_transfer(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    event = alice.file_event(("case.pdf", PDF), ("gone.pdf", PDF))
    gone = event["files"][1]["url_private_download"].rsplit("/", 1)[-1]
    workspace.fake.file_status[gone] = 404
    await workspace.event(event)
    assert "could not fetch gone.pdf from Slack (the file is no longer available there)" \
        in alice.text
    assert "I have 1 file," in alice.text
    assert await transfers(workspace) == 1
    assert len(await uploads_left(workspace)) == 1


async def test_the_token_is_never_sent_to_another_host(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    event = alice.file_event(("case.pdf", PDF))
    event["files"][0]["url_private_download"] = "http://attacker.invalid/steal"
    await workspace.event(event)
    assert not workspace.fake.called("download")
    assert "not a file I can download" in alice.text
    assert await transfers(workspace) == 0


async def test_a_sign_in_page_instead_of_the_file_is_refused(workspace: Workspace) -> None:
    workspace.channel.settings = dataclasses.replace(workspace.channel.settings,
                                                     bot_token="xoxb-wrong")
    alice = workspace.user("UALICE01")
    await workspace.event(alice.file_event(("case.pdf", PDF)))
    assert "Slack refused access to it" in alice.text
    assert await transfers(workspace) == 0 and await uploads_left(workspace) == []


async def test_rate_limited_download_is_retried(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    event = alice.file_event(("case.pdf", PDF))
    file_id = event["files"][0]["url_private_download"].rsplit("/", 1)[-1]
    workspace.fake.file_status[file_id] = 429
    await workspace.event(event)
    assert len(workspace.fake.called("download")) == 2
    assert "I have 1 file," in alice.text


async def test_file_names_cannot_mention_or_link(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("<!channel> <https://evil.example|report>.pdf", PDF))
    shown = alice.last.blocks[0]["text"]["text"]
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert "<https://evil.example" not in shown
    assert not any(workspace.svc.settings.uploads_dir.rglob("*.bin"))
    [stored] = await upload_objects(workspace.svc)
    assert stored.startswith("uploads/received/") and "report" not in stored


async def test_files_sent_together_and_soon_after_join_one_transfer(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    await alice.send_files(("one.pdf", PDF))
    await alice.send_files(("two.txt", b"notes\n" * 40))
    assert "Added to transfer" in alice.text and "it now has 2 files" in alice.text
    assert await transfers(workspace) == 1


async def test_a_file_sent_by_id_only_is_looked_up(workspace: Workspace) -> None:
    alice = workspace.user("UALICE01")
    url = workspace.fake.add_file(PDF)
    file_id = url.rsplit("/", 1)[-1]
    event = alice.message_event("", subtype="file_share", files=[
        {"id": file_id, "file_access": "check_file_info"}])
    await workspace.event(event)
    assert workspace.fake.called("files.info")
    assert "I have 1 file," in alice.text


class Redirector:
    """A server the operator named (SAFEHAVEN_ALLOWED_FETCH_HOSTS) that redirects every
    request to ``target``, and an internal service that records who reached it."""

    def __init__(self) -> None:
        self.target = ""
        self.hits: list[tuple[str, str]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append((request.path, request.headers.get("Authorization", "")))
        if self.target:
            raise web.HTTPFound(self.target)
        return web.Response(body=PDF, content_type="application/octet-stream")

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.handle)
        async with TestServer(app, host="127.0.0.1", port=0) as server:
            yield str(server.make_url("")).rstrip("/")


async def test_a_redirect_to_a_host_not_on_the_list_is_not_followed(
        workspace: Workspace) -> None:
    internal, redirector = Redirector(), Redirector()
    async with internal.serving() as internal_url, redirector.serving() as redirector_url:
        redirector.target = f"{internal_url}/admin/secrets"
        workspace.svc.settings = dataclasses.replace(
            workspace.svc.settings,
            allowed_fetch_hosts=parse_host_rules(redirector_url.split("://")[1]))
        alice = workspace.user("UALICE01")
        event = alice.file_event(("case.pdf", PDF))
        event["files"][0]["url_private_download"] = f"{redirector_url}/files/F1"
        await workspace.event(event)
        assert redirector.hits == [("/files/F1", f"Bearer {TOKEN}")]  # a host it may use
        assert internal.hits == []  # ... but not where it pointed
        assert "another address, which is not one Safe Haven may fetch files from" in alice.text
        assert await transfers(workspace) == 0 and await uploads_left(workspace) == []


async def test_the_token_does_not_follow_a_redirect_to_another_origin(
        workspace: Workspace) -> None:
    redirector = Redirector()
    async with redirector.serving() as redirector_url:
        real = workspace.fake.add_file(PDF)  # on the SLACK_API_URL host: allowed
        redirector.target = real
        workspace.svc.settings = dataclasses.replace(
            workspace.svc.settings,
            allowed_fetch_hosts=parse_host_rules(redirector_url.split("://")[1]))
        alice = workspace.user("UALICE01")
        event = alice.file_event(("case.pdf", PDF))
        event["files"][0]["url_private_download"] = f"{redirector_url}/files/F1"
        await workspace.event(event)
        assert len(redirector.hits) == 1
        file_id = real.rsplit("/", 1)[1]
        assert workspace.fake.downloads == [(file_id, "")]  # followed, without the token
        assert "Slack refused access to it" in alice.text
