"""The folder store on disk: private modes, writes that appear whole or not at all, no
partial or empty folder left behind, stale partial writes swept."""

from __future__ import annotations

import asyncio
import os
import stat
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.objects import ObjectKey, ObjectStoreError
from store.objects.local import PARTIAL, LocalObjectStore


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def _feed(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _read(store: LocalObjectStore, key: str) -> bytes:
    return b"".join([piece async for piece in store.get(ObjectKey(key))])


def _partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(PARTIAL)]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_files_0600_folders_0700_even_under_a_loose_umask(
        tmp_path: Path, loose_umask: None) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    await store.put(ObjectKey("uploads/SH-AAAA-22/1"), _feed(b"secret"))
    root = tmp_path / "objects"
    assert _mode(root) == 0o700
    assert _mode(root / "uploads") == 0o700 and _mode(root / "uploads" / "SH-AAAA-22") == 0o700
    assert _mode(root / "uploads" / "SH-AAAA-22" / "1") == 0o600


async def test_a_write_in_progress_is_invisible_until_whole(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    key = ObjectKey("archives/SH-AAAA-22.zip")
    await store.put(key, _feed(b"old archive"))
    half_written, finish = asyncio.Event(), asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"new "
        half_written.set()
        await finish.wait()
        yield b"archive, complete"

    writing = asyncio.create_task(store.put(key, slow()))
    await half_written.wait()
    await asyncio.sleep(0.05)  # let the first piece reach the partial file
    assert await _read(store, key) == b"old archive"
    assert [info.key async for info in store.list()] == [key]
    assert len(_partials(tmp_path)) == 1
    finish.set()
    assert await writing == len(b"new archive, complete")
    assert await _read(store, key) == b"new archive, complete"
    assert _partials(tmp_path) == []


async def test_a_failed_or_cancelled_write_leaves_no_partial(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"start"
        raise OSError(5, "upload stream lost")

    with pytest.raises(OSError, match="upload stream lost"):
        await store.put(ObjectKey("uploads/A/1"), broken())
    stuck = asyncio.Event()

    async def hangs() -> AsyncIterator[bytes]:
        yield b"start"
        await stuck.wait()
        yield b"never"

    writing = asyncio.create_task(store.put(ObjectKey("uploads/A/2"), hangs()))
    await asyncio.sleep(0.05)
    writing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writing
    assert _partials(tmp_path) == []
    assert [info async for info in store.list()] == []


async def test_delete_removes_emptied_folders_but_not_the_root(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = LocalObjectStore(root)
    await store.put(ObjectKey("uploads/A/1"), _feed(b"1"))
    await store.put(ObjectKey("uploads/A/2"), _feed(b"2"))
    await store.put(ObjectKey("uploads/B/1"), _feed(b"3"))
    await store.delete(ObjectKey("uploads/A/1"))
    assert (root / "uploads" / "A").is_dir()
    await store.delete(ObjectKey("uploads/A/2"))
    assert not (root / "uploads" / "A").exists() and (root / "uploads" / "B").is_dir()
    await store.delete(ObjectKey("uploads/B/1"))
    assert root.is_dir() and list(root.iterdir()) == []
    await store.delete(ObjectKey("uploads"))  # a key that is nothing: nothing happens
    assert root.is_dir()


async def test_stale_partials_are_swept_fresh_ones_kept(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put(ObjectKey("uploads/A/1"), _feed(b"kept"))
    stale = tmp_path / "uploads" / "A" / f"{PARTIAL}dead"
    fresh = tmp_path / "uploads" / "A" / f"{PARTIAL}alive"
    stale.write_bytes(b"crashed writer")
    fresh.write_bytes(b"writer at work")
    an_hour_ago = time.time() - 7200
    os.utime(stale, (an_hour_ago, an_hour_ago))
    assert await store.remove_stale_partials(older_than=3600) == 1
    assert not stale.exists() and fresh.exists()
    assert await _read(store, "uploads/A/1") == b"kept"


async def test_stray_files_are_not_listed_as_objects(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put(ObjectKey("uploads/A/1"), _feed(b"ours"))
    (tmp_path / "uploads" / "not a key").write_bytes(b"someone else's")
    assert [info.key async for info in store.list()] == ["uploads/A/1"]


def test_the_root_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        LocalObjectStore(Path("var/objects"))


async def test_a_disk_failure_is_a_store_error(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put(ObjectKey("uploads/A"), _feed(b"a file where a folder is wanted"))
    with pytest.raises(ObjectStoreError, match="cannot write uploads/A/1"):
        await store.put(ObjectKey("uploads/A/1"), _feed(b"x"))


async def test_memory_stays_flat_through_the_folder_store(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    piece = b"\x5a" * (1024 * 1024)
    tracemalloc.start()
    try:
        assert await store.put(ObjectKey("big"), _feed(*[piece] * 100)) == 100 * len(piece)
        read = 0
        async for chunk in store.get(ObjectKey("big")):
            read += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == 100 * len(piece)
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a 100 MiB object"
