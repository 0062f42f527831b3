"""The object store on a local (or shared, e.g. NFS) filesystem: one file per object.

The key ``uploads/AB12CD/1`` is the file ``<root>/uploads/AB12CD/1``: files 0600, folders
0700. A write goes to a hidden ``.partial-*`` file beside its target, is flushed to disk,
then renamed over the target, so a reader sees the whole old object or the whole new one.
Keys have no hidden segments (:class:`bot.objects.ObjectKey`), so partial files never show
in a listing; :meth:`LocalObjectStore.remove_stale_partials` sweeps those a crash left.
Blocking calls run in worker threads, one chunk at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from bot.objects import ObjectInfo, ObjectKey, ObjectKeyError, ObjectNotFound, ObjectStoreError
from bot.private import FILE_MODE, private_dir

READ_CHUNK = 1024 * 1024
PARTIAL = ".partial-"
_OPEN_ATTEMPTS = 3


class LocalObjectStore:
    """Objects as files under ``root`` (an absolute folder, made 0700 if missing)."""

    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise ValueError("the object store's root must be an absolute path")
        self.root = root
        private_dir(root)

    def __repr__(self) -> str:
        return f"LocalObjectStore({self.root.as_uri()})"

    def _path(self, key: ObjectKey) -> Path:
        return self.root.joinpath(*ObjectKey(key).parts)

    def _open_partial(self, target: Path) -> tuple[Path, BinaryIO]:
        for attempt in range(_OPEN_ATTEMPTS):
            private_dir(target.parent)
            partial = target.parent / f"{PARTIAL}{secrets.token_hex(8)}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            try:
                fd = os.open(partial, flags, FILE_MODE)
            except FileNotFoundError:
                # A concurrent delete removed the (then empty) folder: make it again.
                if attempt + 1 == _OPEN_ATTEMPTS:
                    raise
                continue
            os.fchmod(fd, FILE_MODE)
            return partial, os.fdopen(fd, "wb")
        raise AssertionError("unreachable")

    @staticmethod
    def _commit(handle: BinaryIO, partial: Path, target: Path) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(partial, target)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    @staticmethod
    def _discard(handle: BinaryIO, partial: Path) -> None:
        handle.close()
        partial.unlink(missing_ok=True)

    async def put(self, key: ObjectKey, chunks: AsyncIterable[bytes]) -> int:
        target = self._path(key)
        try:
            partial, handle = await asyncio.to_thread(self._open_partial, target)
        except OSError as exc:
            raise ObjectStoreError(f"{self!r}: cannot write {key}: {exc.strerror}") from exc
        size = 0
        try:
            # The source's own errors go up as they are; the disk's become ObjectStoreError.
            async for piece in chunks:
                await asyncio.to_thread(self._disk, key, handle.write, piece)
                size += len(piece)
            await asyncio.to_thread(self._disk, key, self._commit, handle, partial, target)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._discard, handle, partial))
            raise
        return size

    def _disk(self, key: ObjectKey, action: Callable[..., object], *args: object) -> None:
        try:
            action(*args)
        except OSError as exc:
            raise ObjectStoreError(f"{self!r}: cannot write {key}: {exc.strerror}") from exc

    async def get(self, key: ObjectKey) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"{self!r}: no object {key}") from None
        except OSError as exc:
            raise ObjectStoreError(f"{self!r}: cannot read {key}: {exc.strerror}") from exc
        try:
            while piece := await asyncio.to_thread(handle.read, READ_CHUNK):
                yield piece
        finally:
            handle.close()

    async def head(self, key: ObjectKey) -> ObjectInfo | None:
        path = self._path(key)
        try:
            stat = await asyncio.to_thread(path.stat)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key=ObjectKey(key), size=stat.st_size)

    def _remove(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            path.unlink()
        # Empty folders go too, up to (not including) the root; one still in use stays.
        folder = path.parent
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    async def delete(self, key: ObjectKey) -> None:
        try:
            await asyncio.to_thread(self._remove, self._path(key))
        except OSError as exc:
            raise ObjectStoreError(f"{self!r}: cannot delete {key}: {exc.strerror}") from exc

    def _scan(self, prefix: ObjectKey | None) -> list[ObjectInfo]:
        top = self.root if prefix is None else self._path(prefix)
        found: list[ObjectInfo] = []
        for folder, dirs, files in os.walk(top):
            dirs[:] = [name for name in dirs if not name.startswith(".")]
            for name in files:
                path = Path(folder, name)
                try:
                    key = ObjectKey(path.relative_to(self.root).as_posix())
                    found.append(ObjectInfo(key=key, size=path.stat().st_size))
                except (ObjectKeyError, FileNotFoundError):
                    continue  # a partial write, a stray file, or deleted meanwhile
        return found

    async def list(self, prefix: ObjectKey | None = None) -> AsyncIterator[ObjectInfo]:
        for info in await asyncio.to_thread(self._scan, prefix):
            yield info

    def _sweep(self, older_than: float) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for folder, _, files in os.walk(self.root):
            for name in files:
                path = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    if name.startswith(PARTIAL) and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
        return removed

    async def remove_stale_partials(self, *, older_than: float = 3600.0) -> int:
        """Remove partial writes not touched for ``older_than`` seconds (a crashed writer's;
        on a shared folder another host's write in progress is younger); how many went."""
        return await asyncio.to_thread(self._sweep, older_than)
