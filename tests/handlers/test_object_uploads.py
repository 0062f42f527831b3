"""Uploads live sealed in the shared object store, never as plaintext and never under a host
path: a transfer received by one replica is packaged by another, and whatever ends a
transfer (cancel, rejection, expiry, packaging) leaves no upload object behind."""

from __future__ import annotations

import dataclasses
import io
import os
import time
from pathlib import Path
from typing import Any

import pyzipper
from sqlalchemy import select

from bot.objects import ObjectKey, archive_key
from bot.settings import load_settings
from handlers import approvals, intake, recovery, transfers
from handlers.services import Services
from store.models import AuditRecord, Transfer, TransferFile
from tests.support.core import Clock, Conversation, answer_all
from tests.support.objects import (
    archive_objects,
    archive_plain,
    object_bytes,
    objects_containing,
    upload_objects,
)

SECRET = b"Julia Smith, born 3 March 2015, disclosed at school on Monday.\n" * 50


def replica(svc: Services, var_dir: Path) -> Services:
    """The same database, vault and object store, another host's own var dir."""
    assert svc.settings.secret_key
    settings = load_settings({"SAFEHAVEN_VAR_DIR": str(var_dir),
                              "SAFEHAVEN_DATABASE_URL": svc.settings.database_url,
                              "SAFEHAVEN_SECRET_KEY": svc.settings.secret_key})
    return dataclasses.replace(svc, settings=settings)


async def stored_keys(svc: Services, reference: str) -> list[str | None]:
    async with svc.db.read() as s:
        return list((await s.scalars(select(TransferFile.stored_path).where(
            TransferFile.reference == reference).order_by(TransferFile.position))).all())


async def test_a_transfer_received_here_is_packaged_by_another_replica(
        services: Services, conversation: Any, make_file: Any, tmp_path: Path) -> None:
    chat: Conversation = conversation("console:alice")
    await chat.send_files(make_file("notes.txt", SECRET), make_file("plan.pdf"))
    await answer_all(chat, classification="RESTRICTED", password="sms-on-receipt")
    await chat.say("confirm")
    async with services.db.read() as s:
        row = (await s.scalars(select(Transfer).where(Transfer.sender_id == "console:alice"))
               ).one()
    reference = row.reference
    keys = await stored_keys(services, reference)
    assert all(k is not None and k.startswith("uploads/") for k in keys), keys
    assert not any(services.settings.uploads_dir.rglob("*.bin")), "plaintext left on host A"
    assert await objects_containing(services.objects, SECRET[:60]) == []

    other = replica(services, tmp_path / "replica-c")
    await approvals.decide(other, approver_id="console:manager", reference=reference,
                           approve=True)
    async with services.db.read() as s:
        row = await s.get(Transfer, reference)
    assert row is not None and row.status == "ready", row.status if row else None
    assert row.archive_path == archive_key(reference) and row.archive_size
    assert await archive_objects(services) == [archive_key(reference)]
    assert await upload_objects(services) == []
    assert await stored_keys(services, reference) == [None, None]
    assert await objects_containing(services.objects, SECRET[:60]) == []
    assert row.password_sealed is not None
    password = services.vault.open(row.password_sealed, reference=reference)
    archive = await archive_plain(services, reference)
    assert len(archive) == row.archive_size
    with pyzipper.AESZipFile(io.BytesIO(archive)) as zf:
        zf.setpassword(password.encode())
        assert zf.read("document-1.txt") == SECRET
    scratch = transfers.packaging_dir(other.settings)
    assert not scratch.exists() or not any(scratch.iterdir()), "packaging scratch left"
    assert not services.settings.archives_dir.exists()  # host A never built or kept it


async def test_no_object_is_plaintext_and_keys_are_not_host_paths(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat: Conversation = conversation("console:alice")
    await chat.send_files(make_file("notes.txt", SECRET))
    uploads = await upload_objects(services)
    assert len(uploads) == 1 and uploads[0].startswith("uploads/received/")
    sealed = await object_bytes(services.objects, uploads[0])
    assert SECRET[:32] not in sealed and len(sealed) > len(SECRET)
    assert not any(services.settings.uploads_dir.rglob("*.bin"))
    await answer_all(chat)
    await chat.say("confirm")
    assert await objects_containing(services.objects, SECRET[:32]) == []
    assert await objects_containing(services.objects, b"Julia Smith") == []
    async with services.db.read() as s:
        paths = [t.archive_path for t in (await s.scalars(select(Transfer))).all()]
    assert paths and all(p and not os.path.isabs(p) for p in paths)


async def test_packaging_that_fails_keeps_the_uploads_for_a_retry(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat: Conversation = conversation("console:alice")
    await chat.send_files(make_file("notes.txt", SECRET))
    [key] = await upload_objects(services)
    await services.objects.put(key, _chunks(b"not an envelope"))  # damaged in the store
    await answer_all(chat)
    await chat.say("confirm")
    assert "Packaging transfer" in chat.text and "failed" in chat.text
    async with services.db.read() as s:
        row = (await s.scalars(select(Transfer))).one()
    assert row.status == "package_failed" and row.archive_path is None
    assert await upload_objects(services) == [key]
    assert await archive_objects(services) == []
    scratch = transfers.packaging_dir(services.settings)
    assert not any(scratch.iterdir())


async def _chunks(data: bytes) -> Any:
    yield data


async def test_orphan_uploads_in_the_store_are_deleted_after_an_hour(
        services: Services, clock: Clock) -> None:
    young = intake.new_upload_key()
    old = intake.new_upload_key(time.time() - recovery.ORPHAN_UPLOAD_SECONDS - 1)
    kept = intake.new_upload_key(time.time() - recovery.ORPHAN_UPLOAD_SECONDS - 1)
    for key in (young, old, kept):
        await services.objects.put(key, _chunks(b"sealed"))
    now = clock()
    async with services.db.transaction() as s:
        s.add(Transfer(reference="SH-KEEP-22", sender_id="console:alice", status="draft",
                       file_count=1, total_bytes=6, created_at=now, updated_at=now))
        await s.flush()
        s.add(TransferFile(reference="SH-KEEP-22", position=1, original_name="a.txt",
                           stored_path=str(kept), size=6, kind="text"))
    assert await recovery.delete_orphan_uploads(services) == 1
    assert await upload_objects(services) == sorted([young, kept])
    assert ObjectKey(old) not in await upload_objects(services)


async def test_legacy_rows_are_sealed_into_the_store_on_start(
        services: Services, clock: Clock) -> None:
    folder = services.settings.uploads_dir / ("ab" * 16)
    folder.mkdir(parents=True)
    (folder / "upload.bin").write_bytes(SECRET)
    key = f"uploads/legacy/{folder.name}"
    now = clock()
    async with services.db.transaction() as s:
        s.add(Transfer(reference="SH-LEGA-CY", sender_id="console:alice", status="submitted",
                       file_count=1, total_bytes=len(SECRET), created_at=now, updated_at=now))
        await s.flush()
        s.add(TransferFile(reference="SH-LEGA-CY", position=1, original_name="a.txt",
                           stored_path=key, size=len(SECRET), kind="text"))
    assert await recovery.seal_legacy_files(services) == 1
    assert not folder.exists()
    assert await upload_objects(services) == [key]
    assert await objects_containing(services.objects, SECRET[:32]) == []
    async with services.db.read() as s:
        assert (await s.scalars(select(AuditRecord))).first() is None


async def test_a_legacy_archive_moves_into_the_store_on_start(
        services: Services, clock: Clock) -> None:
    services.settings.archives_dir.mkdir(parents=True)
    legacy = services.settings.archives_dir / "SH-OLDA-RC.zip"
    legacy.write_bytes(b"PK encrypted archive")
    stray = services.settings.archives_dir / "SH-GONE-00.zip"  # no transfer keeps it
    stray.write_bytes(b"PK another")
    now = clock()
    async with services.db.transaction() as s:
        s.add(Transfer(reference="SH-OLDA-RC", sender_id="console:alice", status="ready",
                       archive_path=archive_key("SH-OLDA-RC"), archive_size=20, file_count=1,
                       total_bytes=1, created_at=now, updated_at=now))
    assert await recovery.seal_legacy_files(services) == 1
    assert not legacy.exists() and stray.exists()
    assert await archive_plain(services, "SH-OLDA-RC") == b"PK encrypted archive"
    assert await recovery.seal_legacy_files(services) == 0  # once per process
