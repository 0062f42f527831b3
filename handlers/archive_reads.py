"""Reading a transfer's encrypted archive back, from any process: the portal download, the
sender's ``archive REF`` and the chat hand-backs (Slack upload, Teams file consent).

The archive is the object ``archive_key(reference)`` in the shared store
(``Services.objects``), so a replica that did not package it serves it all the same. It is
stored sealed in an envelope (:mod:`bot.envelope`) whose context is its key: an archive
changed, truncated or replaced in the store, or another transfer's copied over it, fails
closed (:class:`ArchiveTampered`): at open, before any size is promised, or while
streaming, before its last bytes go out, so no reader ever gets a whole substituted file.
:func:`opener` wires that to an audit record and a word to the sender. An archive packaged
before archives went into the store is still read from the packaging host's archives
folder (``<var>/archives/<reference>.zip``), on that host only. Nothing is read whole into
memory: the bytes come as a stream of chunks.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.chunks import read_chunks
from bot.envelope import (
    STANDARD_HEADER_SIZE,
    EnvelopeError,
    decrypt_stream,
    header_size,
    plaintext_size,
)
from bot.messages import transfers as msg
from bot.objects import ObjectNotFound, ObjectStore, ObjectStoreError, archive_key
from bot.replies import Text
from bot.vault import Vault
from handlers.services import Services
from store import audit
from store import repositories as repo

log = logging.getLogger(__name__)
OnTampered = Callable[[str], Awaitable[None]]
ArchiveSource = Callable[[str], Awaitable["OpenArchive | None"]]


class ArchiveTampered(ObjectStoreError):
    """The archive object failed its integrity check: changed, truncated, replaced or
    another transfer's. Nothing of it may be used."""


@dataclass(frozen=True, slots=True)
class OpenArchive:
    """An archive ready to be streamed: its size (for a Content-Length) and its bytes.
    Consume ``chunks`` once, and close it (``aclose``) when done or stopping early."""

    reference: str
    size: int
    chunks: AsyncGenerator[bytes, None]

    @property
    def filename(self) -> str:
        return f"{self.reference}.zip"


async def _from(first: bytes, rest: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """``first`` then the rest of ``rest``; closing this closes ``rest``."""
    try:
        if first:
            yield first
        async for piece in rest:
            yield piece
    finally:
        await _close(rest)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    """Close a stream of chunks (an async generator holds a file or a connection open)."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


async def _tampered(reference: str, on_tampered: OnTampered | None,
                    why: str) -> ArchiveTampered:
    log.error("the archive of %s failed its integrity check: %s", reference, why)
    if on_tampered is not None:
        try:
            await on_tampered(reference)
        except Exception as exc:  # the refusal stands either way
            log.error("could not report the altered archive of %s: %s", reference,
                      type(exc).__name__)
    return ArchiveTampered(f"the archive of {reference} failed its integrity check")


async def _checked(reference: str, size: int, first: bytes, rest: AsyncIterator[bytes],
                   on_tampered: OnTampered | None) -> AsyncGenerator[bytes, None]:
    """The plaintext of an opened envelope, every chunk authenticated before it is yielded;
    :class:`ArchiveTampered` instead of the last bytes when anything does not check out
    (including a length other than the promised ``size``)."""
    sent = 0
    try:
        if first:
            sent += len(first)
            yield first
        while True:
            try:
                piece = await anext(rest)
            except StopAsyncIteration:
                break
            except EnvelopeError as exc:
                raise await _tampered(reference, on_tampered, str(exc)) from None
            sent += len(piece)
            if sent > size:
                raise await _tampered(reference, on_tampered, "longer than its head said")
            yield piece
        if sent != size:
            raise await _tampered(reference, on_tampered, "shorter than its head said")
    finally:
        await _close(rest)


async def _open_stored(objects: ObjectStore, vault: Vault, reference: str,
                       on_tampered: OnTampered | None
                       ) -> tuple[int, AsyncGenerator[bytes, None]] | None:
    """The archive object, opened and its first chunk authenticated so a missing or
    substituted object is known before anything is promised (a Content-Length, a consent
    card); None when there is none."""
    key = archive_key(reference)
    info = await objects.head(key)
    if info is None:
        return None
    sealed = objects.get(key)
    head = b""
    try:
        while len(head) < 6:
            piece = await anext(sealed, None)
            if piece is None:
                break
            head += piece
    except ObjectNotFound:  # deleted between the head and the read
        await _close(sealed)
        return None
    start = header_size(head)
    size = plaintext_size(info.size, start) if start is not None else None
    if size is None:
        await _close(sealed)
        raise await _tampered(reference, on_tampered, "not a sealed archive")
    plain = decrypt_stream(_from(head, sealed), vault, context=key)
    try:
        first = await anext(plain, b"")
    except EnvelopeError as exc:
        await _close(plain)
        raise await _tampered(reference, on_tampered, str(exc)) from None
    except ObjectNotFound:
        await _close(plain)
        return None
    return size, _checked(reference, size, first, plain, on_tampered)


def legacy_path(archives_dir: Path, reference: str) -> Path:
    """Where a host kept an archive it packaged before archives went into the store."""
    return archives_dir / f"{reference}.zip"


async def open_archive(objects: ObjectStore, archives_dir: Path, reference: str, *,
                       vault: Vault, on_tampered: OnTampered | None = None
                       ) -> OpenArchive | None:
    """The transfer's archive, streamed from the object store and checked against ``vault``
    (or, for one packaged before that, from this host's archives folder); None when neither
    has it. Raises :class:`ArchiveTampered` (after awaiting ``on_tampered(reference)``)
    for an archive that fails its check, at open or mid-stream, and
    :class:`bot.objects.ObjectStoreError` when the store itself fails."""
    stored = await _open_stored(objects, vault, reference, on_tampered)
    if stored is not None:
        return OpenArchive(reference, stored[0], stored[1])
    path = legacy_path(archives_dir, reference)
    try:
        size = path.stat().st_size if path.is_file() else None
    except OSError:
        size = None
    if size is None:
        return None
    return OpenArchive(reference, size, _from(b"", read_chunks(path)))


async def report_tampered(svc: Services, reference: str) -> None:
    """An archive of ``reference`` failed its check: audit it and tell the sender."""
    async with svc.db.transaction() as session:
        transfer = await repo.get_transfer(session, reference=reference)
        await audit.append(session, at=svc.clock(), actor="safehaven",
                           action="archive_integrity_failed", reference=reference,
                           details={"object": archive_key(reference), "handed_out": False})
    if transfer is not None:
        await svc.notifier.notify(transfer.sender_id, [Text(msg.ARCHIVE_TAMPERED.format(
            reference=reference))], reference=reference)


def opener(svc: Services) -> ArchiveSource:
    """:func:`open_archive` for this process's store, checked against its server key, an
    archive failing its check reported with :func:`report_tampered`."""
    async def open_for(reference: str) -> OpenArchive | None:
        return await open_archive(svc.objects, svc.settings.archives_dir, reference,
                                  vault=svc.vault,
                                  on_tampered=lambda ref: report_tampered(svc, ref))
    return open_for


async def archive_size(objects: ObjectStore, archives_dir: Path, reference: str) -> int | None:
    """The archive's size if it is still kept (store or legacy folder), without reading it
    (for a sealed one, worked out from the envelope's size)."""
    info = await objects.head(archive_key(reference))
    if info is not None:
        return plaintext_size(info.size, STANDARD_HEADER_SIZE) or 0
    path = legacy_path(archives_dir, reference)
    return path.stat().st_size if path.is_file() else None
