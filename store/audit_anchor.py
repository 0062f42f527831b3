"""Where the audit trail's signed checkpoints are kept: outside the database.

``SAFEHAVEN_AUDIT_ANCHOR`` names it (bot/settings.py):

- a file path (the default, ``<var dir>/audit-anchor.jsonl``): one checkpoint per line,
  appended under an exclusive ``flock`` with ``O_APPEND``, so processes on one host writing
  at once never interleave or overwrite a line; the file is 0600.
- ``objects:<key>``: objects under ``<key>`` in the configured object store
  (``SAFEHAVEN_OBJECT_STORE``), one per checkpoint, named by its head and base record, so two
  replicas writing at once write different objects (or the same checkpoint twice).
- an object-store URL (``s3://bucket/prefix``, ``az://...``, ``file:///...``): the same, in a
  store of its own, e.g. a bucket with object lock (write once, read many).

The history is kept: every checkpoint written stays, so an auditor can see the trail grow.
The anchor is only as strong as its storage: a place the database administrator cannot
also rewrite (another host, another account, a WORM bucket) is what makes truncation show.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from bot.audit_keys import AuditKeyError, SignedCheckpoint
from bot.objects import ObjectKey, ObjectStore
from bot.private import private_dir
from store.objects import open_object_store

OBJECTS_PREFIX = "objects:"


class Anchor(Protocol):
    """Append-only storage for signed checkpoints."""

    description: str

    async def append(self, checkpoint: SignedCheckpoint) -> None: ...

    async def read(self) -> list[SignedCheckpoint | None]:
        """Every checkpoint, oldest first where the storage knows; None for an entry that
        cannot be read (a tampered or truncated line)."""
        ...


class FileAnchor:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)

    def _append(self, line: bytes) -> None:
        private_dir(self.path.parent, own=False)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # (releases the lock)

    async def append(self, checkpoint: SignedCheckpoint) -> None:
        line = (json.dumps(checkpoint.to_json(), sort_keys=True) + "\n").encode("utf-8")
        await asyncio.to_thread(self._append, line)

    def _read(self) -> list[SignedCheckpoint | None]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        found: list[SignedCheckpoint | None] = []
        for line in text.splitlines():
            if line.strip():
                found.append(_parse(line.encode("utf-8")))
        return found

    async def read(self) -> list[SignedCheckpoint | None]:
        return await asyncio.to_thread(self._read)


class ObjectAnchor:
    def __init__(self, store: ObjectStore, prefix: ObjectKey, description: str) -> None:
        self.store = store
        self.prefix = prefix
        self.description = description

    async def append(self, checkpoint: SignedCheckpoint) -> None:
        c = checkpoint.checkpoint
        name = f"{c.head_seq:016d}-{c.base_seq:016d}.json"
        body = json.dumps(checkpoint.to_json(), sort_keys=True).encode("utf-8")

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        await self.store.put(self.prefix.child(name), chunks())

    async def read(self) -> list[SignedCheckpoint | None]:
        infos = sorted([info async for info in self.store.list(self.prefix)],
                       key=lambda info: info.key)
        found: list[SignedCheckpoint | None] = []
        for info in infos:
            data = b"".join([chunk async for chunk in self.store.get(info.key)])
            found.append(_parse(data))
        return found


def _parse(data: bytes) -> SignedCheckpoint | None:
    try:
        return SignedCheckpoint.from_json(json.loads(data))
    except (AuditKeyError, ValueError):
        return None


def open_anchor(spec: str, *, objects: ObjectStore) -> Anchor:
    """The anchor ``spec`` names (see the module docstring); ``objects`` is the configured
    object store, used for ``objects:<key>``."""
    if spec.startswith(OBJECTS_PREFIX):
        key = ObjectKey(spec[len(OBJECTS_PREFIX):].strip("/"))
        return ObjectAnchor(objects, key, spec)
    if "://" in spec:
        return ObjectAnchor(open_object_store(spec), ObjectKey("checkpoints"), spec)
    return FileAnchor(Path(spec))
