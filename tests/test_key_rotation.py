"""Rotating ``SAFEHAVEN_SECRET_KEY`` mid-flight (SQLite and PostgreSQL).

In flight under the old key: SMS password sends due, a voice call booked for tomorrow, a
transfer's uploads waiting for approval (so not packaged yet), and a portal link live. The
key is rotated (new key current, old one in SAFEHAVEN_PREVIOUS_SECRET_KEYS) and
``rotate-key`` run; then the old key is removed altogether, and every pending delivery
still goes out through the fake Twilio (with the right password), the call reads the right
password after the code, the approved transfer packages, the link downloads an archive that
opens with the texted password, and the audit trail verifies. The same through the real
``safehaven rotate-key`` process: counts, the verdict, a missing or malformed old key
reported clearly, never a traceback, never a key in the output.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pyzipper
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.app.config import load_config
from bot.app.rotation import left_behind, rotate
from bot.app.runtime import build_runtime
from bot.app.web import create_app
from bot.envelope import header_key_id
from bot.objects import ARCHIVES, UPLOADS
from bot.passwords import spell_for_voice
from bot.vault import Vault, _decode_key, generate_key
from channels.twilio.settings import TwilioSettings, load_twilio_settings
from channels.twilio.transport import TwilioTransport
from channels.twilio.webhooks import mount_twilio
from handlers import approvals
from handlers.password_sends import dispatch
from handlers.password_sends.scheduling import confirm_receipt
from handlers.services import Services
from store import audit
from store.models import PasswordSend, Transfer
from tests.support.core import RECIPIENT, Clock, Conversation, answer_all
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio, seed_due_sms

PUBLIC = "https://safehaven.example.gov.uk"
REF = re.compile(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}")
SMS_PASSWORD = re.compile(r"the password for (SH-[0-9A-Z-]+) is (\S+) \.")
ROOT = Path(__file__).resolve().parents[1]
SAFEHAVEN = shutil.which("safehaven", path=str(Path(sys.executable).parent))


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeTwilio]:
    server = await FakeTwilio(clock=clock).start()
    yield server
    await server.close()


@pytest.fixture
def twilio_settings(fake: FakeTwilio) -> TwilioSettings:
    settings = load_twilio_settings({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+441632960001", "SAFEHAVEN_PUBLIC_URL": PUBLIC,
        "TWILIO_API_URL": fake.url})
    assert settings is not None
    return settings


@pytest.fixture
async def tw(services: Services, twilio_settings: TwilioSettings) -> AsyncIterator[Services]:
    transport = TwilioTransport(twilio_settings)
    services.transport = transport
    yield services
    await transport.close()


def use_key(svc: Services, vault: Vault) -> None:
    """What restarting every process with new key settings does."""
    svc.vault = vault
    audit.attach(svc.db, audit.trail_from_settings(svc.settings, vault=vault,
                                                   objects=svc.objects))


async def start(svc: Services, make_file: Any, **answers: Any) -> tuple[str, Conversation]:
    chat = Conversation(svc, "console:alice")
    await chat.send_files(make_file("case notes.pdf"), make_file("chronology.txt"))
    ref = REF.search(chat.text)
    assert ref
    await answer_all(chat, **answers)
    await chat.say("confirm")
    return ref.group(0), chat


async def post_signed(client: TestClient[Any, Any], path: str, form: dict[str, str]) -> str:
    sig = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + path, form)
    resp = await client.post(path, data=form, headers={"X-Twilio-Signature": sig})
    assert resp.status == 200, resp.status
    return await resp.text()


def texted(fake: FakeTwilio) -> dict[str, str]:
    """Reference -> the password texted for it (the fake Twilio's messages)."""
    found = {}
    for message in fake.messages:
        match = SMS_PASSWORD.search(message["Body"])
        if match:
            found[match.group(1)] = match.group(2)
    return found


async def sealed_passwords(svc: Services) -> dict[str, str]:
    async with svc.db.read() as s:
        rows = (await s.execute(select(Transfer.reference, Transfer.password_sealed)
                                .where(Transfer.password_sealed.is_not(None)))).all()
    return {ref: sealed or "" for ref, sealed in rows}


async def envelope_key_ids(svc: Services) -> set[str | None]:
    ids = set()
    for prefix in (UPLOADS, ARCHIVES):
        async for info in svc.objects.list(prefix):
            head = b"".join([piece async for piece in svc.objects.get(info.key)])[:512]
            ids.add(header_key_id(head))
    return ids


async def test_rotate_mid_flight_then_remove_the_old_key(
        tw: Services, fake: FakeTwilio, twilio_settings: TwilioSettings, clock: Clock,
        make_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    svc = tw
    assert svc.settings.secret_key
    old_key, new_key = _decode_key(svc.settings.secret_key), _decode_key(generate_key())
    use_key(svc, Vault(old_key))
    app = create_app(svc, migrate=False, scheduler=False)
    mount_twilio(app, svc, twilio_settings)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        # --- in flight under the old key ---------------------------------------------
        due = await seed_due_sms(svc.db, svc.vault, count=3, now=clock())
        call_ref, _ = await start(svc, make_file, recipient=dict(RECIPIENT,
                                                                 phone="020 7946 0000"),
                                  password="voice", call_at="2026-11-24 10:00")
        link_ref, link_chat = await start(svc, make_file, delivery="portal")
        link_path = re.search(r"/p/[A-Za-z0-9_-]+", link_chat.text)
        assert link_path, link_chat.text
        waiting_ref, _ = await start(svc, make_file, classification="RESTRICTED",
                                     password="sms-on-receipt")
        async with svc.db.read() as s:
            waiting = await s.get(Transfer, waiting_ref)
        assert waiting is not None and waiting.status == "awaiting_approval"
        link_password = texted(fake)[link_ref]
        assert not any(ref in texted(fake) for ref in due)  # not sent yet
        before = await sealed_passwords(svc)
        assert set(due) | {call_ref} <= set(before)
        assert await envelope_key_ids(svc) == {svc.vault.key_id}
        old_id = svc.vault.key_id

        # --- rotate: the new key current, the old one still accepted -------------------
        use_key(svc, Vault(new_key, [old_key]))
        assert await rotate(svc) == 0
        report = capsys.readouterr().out
        assert re.search(rf"passwords\s+{len(before)} re-sealed", report), report
        assert re.search(r"uploads\s+[1-9]\d* re-sealed", report), report
        assert re.search(r"archives\s+[1-9]\d* re-sealed", report), report
        assert "You can now remove SAFEHAVEN_PREVIOUS_SECRET_KEYS" in report
        assert old_id in report
        for secret in (svc.settings.secret_key, generate_key()):
            assert secret not in report
        assert await rotate(svc) == 0  # again: nothing left to do
        again = capsys.readouterr().out
        assert re.search(r"passwords\s+0 re-sealed", again), again
        assert "already linked" in again

        # --- the old key removed from the settings --------------------------------------
        use_key(svc, Vault(new_key))
        left = await left_behind(svc)
        assert left.total == 0, left.where()
        assert await envelope_key_ids(svc) == {svc.vault.key_id}
        assert all(s.startswith(f"v2:{svc.vault.key_id}:")
                   for s in (await sealed_passwords(svc)).values())

        # The SMS sends that were due go out, each with its own password.
        await dispatch.run_due(svc)
        sent = texted(fake)
        assert {ref: sent.get(ref, "") for ref in due} == {ref: f"Pw-{ref}" for ref in due}

        # The approver approves: the uploads sealed under the old key are packaged.
        replies = await approvals.decide(svc, approver_id="console:manager",
                                         reference=waiting_ref, approve=True)
        assert "approved" in getattr(replies[0], "text", "")
        await dispatch.run_due(svc)
        async with svc.db.read() as s:
            packaged = await s.get(Transfer, waiting_ref)
        assert packaged is not None and packaged.archive_path, packaged
        await confirm_receipt(svc, reference=waiting_ref, by="console:alice")
        await dispatch.run_due(svc)
        assert waiting_ref in texted(fake)

        # The portal link, live across the rotation, downloads what the texted password
        # opens.
        download = await client.post(link_path.group(0))
        assert download.status == 200
        data = await download.read()
        with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
            zf.setpassword(link_password.encode())
            assert all(zf.read(name) for name in zf.namelist())

        # The call booked before the rotation: placed, and after the code it reads the
        # password sealed before the rotation.
        clock.advance(days=1, minutes=31)
        await dispatch.run_due(svc)
        assert fake.calls, "the booked call was placed"
        async with svc.db.read() as s:
            d = (await s.scalars(select(PasswordSend).where(
                PasswordSend.reference == call_ref, PasswordSend.kind == "voice"))).one()
            t = await s.get(Transfer, call_ref)
        assert t is not None and t.call_code and t.password_sealed
        sid, base = fake.calls[-1]["Sid"], f"/twilio/voice/{d.id}"
        assert "<Gather" in await post_signed(client, f"{base}/answer",
                                              {"CallSid": sid, "AnsweredBy": "human"})
        spoken = await post_signed(client, f"{base}/code", {"CallSid": sid,
                                                            "Digits": t.call_code})
        password = svc.vault.open(t.password_sealed, reference=call_ref)
        assert spell_for_voice(password)[1] in spoken

    # The audit trail verifies with the new key alone, across the rotation.
    trail = audit.trail_of(svc.db)
    assert trail is not None and not trail.keys.previous
    await trail.checkpoint(svc.db, now=clock())
    result = await audit.verify_or_raise(svc.db, trail)
    assert result.ok and result.checkpoints >= 2


async def test_a_replica_not_yet_restarted_retries_a_send_instead_of_failing_it(
        tw: Services, fake: FakeTwilio, clock: Clock) -> None:
    """During a rolling restart a replica still on the old settings meets a password sealed
    under the new key: it tries again later rather than failing the send."""
    assert tw.settings.secret_key
    old_key, new_key = _decode_key(tw.settings.secret_key), _decode_key(generate_key())
    (ref,) = await seed_due_sms(tw.db, Vault(new_key, [old_key]), count=1, now=clock())
    tw.vault = Vault(old_key)  # not restarted yet
    await dispatch.run_due(tw)
    async with tw.db.read() as s:
        d = (await s.scalars(select(PasswordSend).where(PasswordSend.reference == ref))).one()
    assert d.status == "due" and "keys are being changed" in (d.last_error or "")
    assert not fake.messages
    tw.vault = Vault(new_key, [old_key])  # restarted with the new settings
    clock.advance(hours=1)
    await dispatch.run_due(tw)
    assert texted(fake).get(ref) == f"Pw-{ref}"


# --- through the real `safehaven rotate-key` process ----------------------------------------


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert SAFEHAVEN, "the safehaven entry point is installed beside this Python"
    return subprocess.run([SAFEHAVEN, *args], env=env, text=True, capture_output=True,
                          timeout=300, cwd=ROOT, check=False)


async def sh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """:func:`run` off the event loop (the fake Twilio answers on it meanwhile)."""
    return await asyncio.to_thread(run, env, *args)


async def seed(env: dict[str, str]) -> list[str]:
    """Three SMS sends due, sealed by the key ``env`` holds, and a checkpointed trail."""
    svc = build_runtime(load_config(env)).svc
    try:
        refs = await seed_due_sms(svc.db, svc.vault, count=3, now=svc.clock())
        async with svc.db.transaction() as s:
            await audit.append(s, at=svc.clock(), actor="console:alice", action="confirmed",
                               reference=refs[0], details={})
        trail = audit.trail_of(svc.db)
        assert trail is not None
        await trail.checkpoint(svc.db, now=svc.clock())
        return refs
    finally:
        await svc.db.close()


async def test_rotate_key_command(tmp_path: Path, database_url: str,
                                  fake: FakeTwilio) -> None:
    old, new = generate_key(), generate_key()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    base.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_DATABASE_URL=database_url,
                SAFEHAVEN_LOG_LEVEL="WARNING")
    first = await sh(dict(base, SAFEHAVEN_SECRET_KEY=old), "migrate")
    assert first.returncode == 0, first.stderr
    refs = await seed(dict(base, SAFEHAVEN_SECRET_KEY=old))

    def clean(done: subprocess.CompletedProcess[str]) -> str:
        both = done.stdout + done.stderr
        assert "Traceback" not in both
        for key in (old, new):
            assert key not in both and key.rstrip("=") not in both
        return both

    # The new key alone: what the old key sealed cannot be opened; nothing is changed.
    missing = await sh(dict(base, SAFEHAVEN_SECRET_KEY=new), "rotate-key")
    said = clean(missing)
    assert missing.returncode == 1
    assert "could not be opened with any configured key" in said
    assert "SAFEHAVEN_PREVIOUS_SECRET_KEYS" in said

    # A well-formed but wrong previous key: the same, and the wrong key is not quoted either.
    other = generate_key()
    wrong_key = await sh(dict(base, SAFEHAVEN_SECRET_KEY=new,
                              SAFEHAVEN_PREVIOUS_SECRET_KEYS=other), "rotate-key")
    said = clean(wrong_key)
    assert wrong_key.returncode == 1 and other not in said
    assert "could not be opened with any configured key" in said
    assert "audit trail    NOT linked" in said

    # A malformed previous key: named, never quoted.
    for bad in ("not-a-key", old[:20]):
        wrong = await sh(dict(base, SAFEHAVEN_SECRET_KEY=new,
                              SAFEHAVEN_PREVIOUS_SECRET_KEYS=bad), "rotate-key")
        said = clean(wrong)
        assert wrong.returncode == 2 and "SAFEHAVEN_PREVIOUS_SECRET_KEYS (key 1)" in said
        assert bad not in said

    # The old key in a file of previous keys: everything re-sealed, counts, the verdict.
    keys_file = tmp_path / "previous.keys"
    keys_file.write_text(f"# retired 2026-12-03\n{old}\n")
    rotated = await sh(dict(base, SAFEHAVEN_SECRET_KEY=new,
                       SAFEHAVEN_PREVIOUS_SECRET_KEYS_FILE=str(keys_file)), "rotate-key")
    said = clean(rotated)
    assert rotated.returncode == 0, said
    assert re.search(r"passwords\s+3 re-sealed", said), said
    assert re.search(r"\d+ rotation checkpoints? written", said), said
    assert "You can now remove SAFEHAVEN_PREVIOUS_SECRET_KEYS" in said

    # The old key removed: the check says nothing is left, and the trail verifies.
    alone = dict(base, SAFEHAVEN_SECRET_KEY=new)
    check = await sh(alone, "rotate-key", "--check")
    said = clean(check)
    assert check.returncode == 0 and "nothing is sealed under an earlier key" in said, said
    verified = await sh(alone, "audit", "verify")
    assert verified.returncode == 0 and "audit trail intact" in clean(verified)
    shown = await sh(alone, "audit", "public-key", "--all")
    said = clean(shown)
    assert shown.returncode == 0 and said.count("BEGIN PUBLIC KEY") == 2
    assert "previous" in said

    # The SMS sends sealed under the old key go out from a worker that never had it.
    worker = await sh(dict(
        alone, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER="+441632960001", SAFEHAVEN_PUBLIC_URL=PUBLIC,
        TWILIO_API_URL=fake.url, SAFEHAVEN_SCHEDULER_INTERVAL="0.2"),
        "worker", "--exit-when-idle")
    clean(worker)
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert {ref: texted(fake).get(ref, "") for ref in refs} == {ref: f"Pw-{ref}" for ref in refs}


async def test_rotate_key_while_a_worker_sends(tmp_path: Path, database_url: str,
                                               fake: FakeTwilio) -> None:
    """``rotate-key`` and a ``worker`` at once, both with the rotated settings: every
    password goes out once, with its own password, and the rotation completes."""
    old, new = generate_key(), generate_key()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    base.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_DATABASE_URL=database_url,
                SAFEHAVEN_LOG_LEVEL="WARNING")
    assert (await sh(dict(base, SAFEHAVEN_SECRET_KEY=old), "migrate")).returncode == 0
    svc = build_runtime(load_config(dict(base, SAFEHAVEN_SECRET_KEY=old))).svc
    refs = await seed_due_sms(svc.db, svc.vault, count=40, now=svc.clock())
    await svc.db.close()
    rotated = dict(base, SAFEHAVEN_SECRET_KEY=new, SAFEHAVEN_PREVIOUS_SECRET_KEYS=old,
                   TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                   TWILIO_FROM_NUMBER="+441632960001", SAFEHAVEN_PUBLIC_URL=PUBLIC,
                   TWILIO_API_URL=fake.url, SAFEHAVEN_SCHEDULER_INTERVAL="0.2")
    worker, rotation = await asyncio.gather(sh(rotated, "worker", "--exit-when-idle"),
                                            sh(rotated, "rotate-key"))
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert rotation.returncode == 0, rotation.stdout + rotation.stderr[-2000:]
    assert {ref: texted(fake).get(ref, "") for ref in refs} == {ref: f"Pw-{ref}" for ref in refs}
    assert fake.duplicates() == 0
    check = await sh(dict(base, SAFEHAVEN_SECRET_KEY=new), "rotate-key", "--check")
    assert check.returncode == 0, check.stdout
