"""Re-sealing what earlier server keys sealed, for ``safehaven rotate-key``.

Every sealed value names the key that sealed it (bot/vault.py), so what is left to re-seal
is found by asking for values not sealed by the current key: in the database, the pending
passwords, held notices and Slack inbox bodies; in the object store, the data key in the
header of every upload and archive envelope (bot/envelope.py).

Safe while ``serve`` and ``worker`` run: a value is replaced only if it is still the one
read (a compare-and-swap ``UPDATE``), in short transactions, so a password delivered (and
cleared) meanwhile stays cleared; an envelope is rewritten whole and atomically with the
same data key and chunks, so a reader sees the old envelope or the new one, both opening
while the old key is configured. Running it again, or twice at once, re-seals nothing
twice: a value already under the current key is skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, not_, select, update
from sqlalchemy.orm import InstrumentedAttribute

from bot.envelope import EnvelopeError, header_key_id, header_size, reseal_header
from bot.objects import (
    ARCHIVES,
    UPLOADS,
    ObjectKey,
    ObjectKeyError,
    ObjectNotFound,
    ObjectStore,
)
from bot.vault import Vault, VaultError
from store.db import Database
from store.models import Transfer, TransferFile

_BATCH = 200
_HEADER_READ = 6  # enough bytes to know an envelope header's length


@dataclass(frozen=True)
class SealedColumn:
    """A column holding values sealed with the vault: ``kind`` names it in reports;
    ``context`` gives a row's associated data from the columns ``needs``."""

    kind: str
    key: InstrumentedAttribute[Any]
    sealed: InstrumentedAttribute[Any]
    needs: tuple[InstrumentedAttribute[Any], ...]
    context: Callable[[Sequence[Any]], str]


@dataclass
class Tally:
    """What one kind came to: re-sealed now, already under the current key, and the ones
    no configured key opens (left as they were)."""

    resealed: int = 0
    current: int = 0
    unopenable: int = 0


def _not_current(column: InstrumentedAttribute[Any], vault: Vault) -> ColumnElement[bool]:
    return and_(column.is_not(None), not_(column.startswith(f"v2:{vault.key_id}:")))


async def reseal_column(db: Database, vault: Vault, spec: SealedColumn) -> Tally:
    """Re-seal every value of ``spec`` not under the current key, a batch a transaction."""
    tally = Tally()
    model = spec.key.class_
    last: Any = None
    while True:
        async with db.transaction() as session:
            query = (select(spec.key, spec.sealed, *spec.needs)
                     .where(_not_current(spec.sealed, vault)).order_by(spec.key).limit(_BATCH))
            if last is not None:
                query = query.where(spec.key > last)
            rows = (await session.execute(query)).all()
            for row in rows:
                key, sealed, needs = row[0], row[1], tuple(row[2:])
                try:
                    new = vault.reseal(sealed, reference=spec.context(needs))
                except VaultError:
                    tally.unopenable += 1
                    continue
                if new is None:
                    tally.current += 1
                    continue
                done = await session.execute(
                    update(model).where(spec.key == key, spec.sealed == sealed)
                    .values({spec.sealed.key: new}).execution_options(synchronize_session=False))
                tally.resealed += done.rowcount or 0  # type: ignore[attr-defined]
        if len(rows) < _BATCH:
            return tally
        last = rows[-1][0]


async def left_in_column(db: Database, vault: Vault, spec: SealedColumn) -> int:
    """How many values of ``spec`` are not sealed by the current key."""
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(spec.key.class_)
                                          .where(_not_current(spec.sealed, vault)))).scalar()
                   or 0)


async def _referenced(db: Database, key: ObjectKey) -> bool:
    column = Transfer.archive_path if key.parts[0] == ARCHIVES else TransferFile.stored_path
    async with db.read() as session:
        found = await session.execute(select(column).where(column == str(key)).limit(1))
        return found.first() is not None


async def _header(stream: AsyncIterator[bytes]) -> tuple[bytes, bytes] | None:
    """(the envelope header, the bytes read after it); None when the object is no envelope."""
    buffer = b""
    while len(buffer) < _HEADER_READ:
        piece = await anext(stream, None)
        if piece is None:
            return None
        buffer += piece
    end = header_size(buffer)
    if end is None:
        return None
    while len(buffer) < end:
        piece = await anext(stream, None)
        if piece is None:
            return None
        buffer += piece
    return buffer[:end], buffer[end:]


async def _rest(first: bytes, header: bytes, stream: AsyncIterator[bytes]
                ) -> AsyncIterator[bytes]:
    yield header + first
    async for piece in stream:
        yield piece


class Outcome(StrEnum):
    RESEALED = "resealed"
    CURRENT = "current"
    UNOPENABLE = "unopenable"  # an envelope no configured key opens
    NOT_SEALED = "not_sealed"  # gone, or no envelope (e.g. an archive from before 0010)


async def reseal_object(objects: ObjectStore, db: Database, vault: Vault,
                        key: ObjectKey) -> Outcome:
    """Rewrite the envelope under ``key`` with its data key sealed by the current key. An
    object deleted while it was being copied (its transfer finished with it) is deleted
    again rather than brought back."""
    stream = objects.get(key)
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        try:
            found = await _header(stream)
        except ObjectNotFound:
            return Outcome.NOT_SEALED
        if found is None:
            return Outcome.NOT_SEALED
        header, first = found
        if header_key_id(header) == vault.key_id:
            return Outcome.CURRENT
        try:
            new = reseal_header(header, vault, context=str(key))
        except EnvelopeError:
            return Outcome.UNOPENABLE
        if new is None:
            return Outcome.CURRENT
        was_referenced = await _referenced(db, key)
        try:
            await objects.put(key, _rest(first, new, stream))
        except ObjectNotFound:
            return Outcome.NOT_SEALED
    if was_referenced and not await _referenced(db, key):
        await objects.delete(key)
    return Outcome.RESEALED


async def reseal_objects(objects: ObjectStore, db: Database, vault: Vault,
                         prefix: ObjectKey) -> Tally:
    """:func:`reseal_object` for every object under ``prefix`` (uploads or archives)."""
    tally = Tally()
    keys = [info.key async for info in objects.list(prefix)]
    for key in sorted(keys):
        outcome = await reseal_object(objects, db, vault, key)
        if outcome is Outcome.RESEALED:
            tally.resealed += 1
        elif outcome is Outcome.CURRENT:
            tally.current += 1
        elif outcome is Outcome.UNOPENABLE:
            tally.unopenable += 1
    return tally


async def left_in_objects(objects: ObjectStore, vault: Vault, prefix: ObjectKey) -> int:
    """How many envelopes under ``prefix`` have a data key not sealed by the current key
    (each object's header is read, nothing more)."""
    left = 0
    keys = [info.key async for info in objects.list(prefix)]
    for key in keys:
        stream = objects.get(key)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            try:
                found = await _header(stream)
            except ObjectNotFound:
                continue
        if found is not None and header_key_id(found[0]) != vault.key_id:
            left += 1
    return left


OBJECT_KINDS = (("uploads", UPLOADS), ("archives", ARCHIVES))


@dataclass
class Referenced:
    """The objects the database refers to (every kept archive and upload): how many, how
    many the object store does not hold, and how many are under an earlier key."""

    total: int = 0
    missing: int = 0
    not_current: int = 0


async def _still_referenced(db: Database, path: str) -> bool:
    async with db.read() as session:
        for column in (Transfer.archive_path, TransferFile.stored_path):
            if (await session.execute(select(column).where(column == path).limit(1))).first():
                return True
    return False


async def referenced_objects(db: Database, objects: ObjectStore, vault: Vault) -> Referenced:
    """Every object the database refers to, looked up in ``objects`` (its header read):
    the verdict is taken from the database's side, so an object store that is not the
    services' (another data folder) shows as objects missing, not as nothing to do. An
    object gone because its transfer finished meanwhile is not counted."""
    async with db.read() as session:
        paths: list[str] = [p for p in (
                 *(await session.scalars(select(Transfer.archive_path)
                                         .where(Transfer.archive_path.is_not(None)))).all(),
                 *(await session.scalars(select(TransferFile.stored_path)
                                         .where(TransferFile.stored_path.is_not(None)))).all())
                 if p]
    found = Referenced()
    for path in paths:
        found.total += 1
        try:
            stream = objects.get(ObjectKey(path))
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                header = await _header(stream)
        except (ObjectNotFound, ObjectKeyError):
            if await _still_referenced(db, path):
                found.missing += 1
            continue
        if header is not None and header_key_id(header[0]) != vault.key_id:
            found.not_current += 1
    return found
