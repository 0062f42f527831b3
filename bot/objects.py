"""The object-store port: where uploads and archives live, shared by every host.

A host never stores a path of its own disk for another to read; it stores an
:class:`ObjectKey` (``uploads/AB12CD/1``) and reads and writes the bytes through an
:class:`ObjectStore`. The adapters are in ``store.objects``: the local filesystem (the
embedded default, under ``var/objects``) and S3-compatible or Azure Blob object storage.
Every operation streams: nothing holds a whole object in memory.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_KEY_LENGTH = 512


class ObjectKeyError(ValueError):
    """A string that is not a valid object key."""


class ObjectKey(str):
    """A relative, ``/``-separated name for one object.

    Each segment starts with a letter or digit and has only letters, digits, ``.``, ``_`` and
    ``-`` (so no ``..``, no hidden names, no empty segments, no leading or trailing ``/``);
    at most 512 characters. It is a ``str``, so it is stored in a text column as it is.
    """

    __slots__ = ()

    def __new__(cls, text: str) -> ObjectKey:
        if not isinstance(text, str) or not text or len(text) > MAX_KEY_LENGTH:
            raise ObjectKeyError("an object key is 1 to 512 characters")
        for segment in text.split("/"):
            if not _SEGMENT.fullmatch(segment):
                raise ObjectKeyError(f"not a valid object key: {text[:80]!r}")
        return super().__new__(cls, text)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.split("/"))

    def child(self, name: str) -> ObjectKey:
        """The key ``self/name`` (``name`` may have several segments)."""
        return ObjectKey(f"{self}/{name}")


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or a head says about one stored object."""

    key: ObjectKey
    size: int


class ObjectStoreError(Exception):
    """The object store failed (unreachable, refused, misconfigured). The message names the
    store and the key, never a credential."""


class ObjectNotFound(ObjectStoreError):
    """No object is stored under this key."""


class ObjectStore(Protocol):
    """Streaming access to named objects. Writes are atomic: a reader sees the whole new
    object or none of it, never part of one."""

    async def put(self, key: ObjectKey, chunks: AsyncIterable[bytes]) -> int:
        """Store the bytes of ``chunks`` under ``key`` (replacing any object there) and
        return how many were stored."""
        ...

    def get(self, key: ObjectKey) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; :class:`ObjectNotFound` on the first step when there
        is none. Close it (``contextlib.aclosing``) if you stop early."""
        ...

    async def head(self, key: ObjectKey) -> ObjectInfo | None:
        """The object's size, or None when there is none."""
        ...

    async def delete(self, key: ObjectKey) -> None:
        """Remove the object; nothing happens when there is none."""
        ...

    def list(self, prefix: ObjectKey | None = None) -> AsyncIterator[ObjectInfo]:
        """Every object under the folder ``prefix`` (whole segments: ``uploads`` lists
        ``uploads/x``, not ``uploads2/x``), or every object; in no particular order."""
        ...


# --- Where a transfer's objects live --------------------------------------------------------

UPLOADS = ObjectKey("uploads")
ARCHIVES = ObjectKey("archives")


def uploads_of(reference: str) -> ObjectKey:
    """The folder of one transfer's uploads: ``uploads/<reference>``."""
    return UPLOADS.child(reference)


def upload_key(reference: str, position: int) -> ObjectKey:
    """The sealed upload of file ``position`` (1-based) of a transfer:
    ``uploads/<reference>/<position>``. Never the sender's file name (it may name a person)."""
    if position < 1:
        raise ObjectKeyError("file positions start at 1")
    return uploads_of(reference).child(str(position))


def archive_key(reference: str) -> ObjectKey:
    """A transfer's encrypted archive: ``archives/<reference>.zip``."""
    return ARCHIVES.child(f"{reference}.zip")


async def delete_all(store: ObjectStore, prefix: ObjectKey) -> int:
    """Delete every object under the folder ``prefix`` (e.g. :func:`uploads_of`); how many
    there were. Safe to repeat and to run from several processes at once."""
    keys = [info.key async for info in store.list(prefix)]
    for key in keys:
        await store.delete(key)
    return len(keys)
