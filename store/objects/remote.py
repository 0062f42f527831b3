"""The object store on S3-compatible or Azure Blob storage, through obstore.

obstore (Rust's ``object_store`` behind an async Python API) streams both ways: a put from
an async iterator goes up as a multipart upload of :data:`PART_SIZE` parts, at most
:data:`PARTS_IN_FLIGHT` at a time, so memory is bounded whatever the object's size; an
object smaller than one part goes up in a single request. A put is atomic: an interrupted
multipart upload is aborted and never becomes visible.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING

import obstore
from obstore.exceptions import BaseError

from bot.objects import ObjectInfo, ObjectKey, ObjectKeyError, ObjectNotFound, ObjectStoreError

if TYPE_CHECKING:
    from obstore.store import AzureStore, S3Store

PART_SIZE = 8 * 1024 * 1024  # S3's smallest part is 5 MiB
PARTS_IN_FLIGHT = 4
READ_CHUNK = 1024 * 1024
# What obstore raises: its own errors, and built-in ones (FileNotFoundError for a missing
# object, which every caller here catches first; ValueError for some bad requests).
_STORE_ERRORS = (BaseError, OSError, ValueError)


def _reason(exc: Exception) -> str:
    """The first line of the library's message, short; it names the request, never a
    credential (requests are signed, the secret itself is never sent)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:300]}"


class RemoteObjectStore:
    """Objects in one bucket (or Azure container) under an optional prefix."""

    def __init__(self, backend: S3Store | AzureStore, *, label: str) -> None:
        self._backend = backend
        self._label = label  # e.g. s3://bucket/prefix: no endpoint, no credential

    def __repr__(self) -> str:
        return f"RemoteObjectStore({self._label})"

    def _fail(self, action: str, key: str, exc: Exception) -> ObjectStoreError:
        return ObjectStoreError(f"{self._label}: cannot {action} {key}: {_reason(exc)}")

    async def put(self, key: ObjectKey, chunks: AsyncIterable[bytes]) -> int:
        key = ObjectKey(key)
        source = aiter(chunks)
        head: list[bytes] = []
        buffered = 0
        async for piece in source:
            head.append(piece)
            buffered += len(piece)
            if buffered >= PART_SIZE:
                break
        else:
            try:
                await obstore.put_async(self._backend, key, b"".join(head), use_multipart=False)
            except _STORE_ERRORS as exc:
                raise self._fail("write", key, exc) from exc
            return buffered
        size = 0
        failure: list[BaseException] = []

        async def stream() -> AsyncIterator[bytes]:
            nonlocal size
            try:
                for piece in head:
                    size += len(piece)
                    yield piece
                head.clear()
                async for piece in source:
                    size += len(piece)
                    yield piece
            except BaseException as exc:
                failure.append(exc)  # the source's own error, raised as it is below
                raise

        try:
            await obstore.put_async(self._backend, key, stream(), use_multipart=True,
                                    chunk_size=PART_SIZE, max_concurrency=PARTS_IN_FLIGHT)
        except _STORE_ERRORS as exc:
            if failure:
                raise failure[0] from None
            raise self._fail("write", key, exc) from exc
        if failure:
            raise failure[0]
        return size

    async def get(self, key: ObjectKey) -> AsyncIterator[bytes]:
        key = ObjectKey(key)
        try:
            result = await obstore.get_async(self._backend, key)
        except FileNotFoundError:
            raise ObjectNotFound(f"{self._label}: no object {key}") from None
        except _STORE_ERRORS as exc:
            raise self._fail("read", key, exc) from exc
        try:
            async for piece in result.stream(min_chunk_size=READ_CHUNK):
                yield bytes(piece)
        except _STORE_ERRORS as exc:
            raise self._fail("read", key, exc) from exc

    async def head(self, key: ObjectKey) -> ObjectInfo | None:
        key = ObjectKey(key)
        try:
            meta = await obstore.head_async(self._backend, key)
        except FileNotFoundError:
            return None
        except _STORE_ERRORS as exc:
            raise self._fail("inspect", key, exc) from exc
        return ObjectInfo(key=key, size=meta["size"])

    async def delete(self, key: ObjectKey) -> None:
        key = ObjectKey(key)
        try:
            await obstore.delete_async(self._backend, key)
        except FileNotFoundError:
            return
        except _STORE_ERRORS as exc:
            raise self._fail("delete", key, exc) from exc

    async def list(self, prefix: ObjectKey | None = None) -> AsyncIterator[ObjectInfo]:
        where = None if prefix is None else ObjectKey(prefix)
        try:
            async for batch in obstore.list(self._backend, prefix=where):
                for meta in batch:
                    try:
                        yield ObjectInfo(key=ObjectKey(meta["path"]), size=meta["size"])
                    except ObjectKeyError:
                        continue  # not one of ours (written by something else)
        except _STORE_ERRORS as exc:
            raise self._fail("list", where or "the store", exc) from exc
