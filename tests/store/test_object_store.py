"""The object-store contract, the same on a folder (file://), on S3 (s3://, moto's server
on 127.0.0.1) and, when Azurite is installed, on Azure Blob Storage (az://): streams in and
out, atomic writes, idempotent deletes, listings by whole segments; and envelopes go in
sealed, so the store never holds the plaintext."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Iterator

import pytest

from bot.envelope import decrypt_stream, encrypt_stream
from bot.objects import (
    ObjectKey,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    archive_key,
    delete_all,
    upload_key,
    uploads_of,
)
from bot.vault import Vault, _decode_key, generate_key
from store.objects import open_object_store
from store.objects.remote import PART_SIZE
from tests.support.azurite import Azurite, azurite, azurite_command
from tests.support.s3 import S3Server, moto_s3

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def azurite_server() -> Iterator[Azurite]:
    if azurite_command() is None:
        pytest.skip("Azurite is not installed (npm install azurite; see tests/support/azurite.py)")
    with azurite() as server:
        yield server


@pytest.fixture(params=["file", "s3", "az"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          ) -> ObjectStore:
    if request.param == "file":
        return open_object_store((tmp_path_factory.mktemp("store") / "objects").as_uri())
    if request.param == "az":
        blob: Azurite = request.getfixturevalue("azurite_server")
        return open_object_store(f"az://{blob.container()}/safehaven", env=blob.env)
    server: S3Server = request.getfixturevalue("s3_server")
    return open_object_store(f"s3://{server.bucket()}/safehaven", env=server.env)


async def _feed(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _read(store: ObjectStore, key: ObjectKey) -> bytes:
    return b"".join([piece async for piece in store.get(key)])


async def _keys(store: ObjectStore, prefix: str | None = None) -> set[str]:
    where = None if prefix is None else ObjectKey(prefix)
    return {info.key async for info in store.list(where)}


@pytest.mark.parametrize("size", [0, 1, 70_000, PART_SIZE + 3 * MiB])
async def test_put_get_head_round_trip(store: ObjectStore, size: int) -> None:
    data = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    pieces = [data[i:i + 65_552] for i in range(0, size, 65_552)]
    key = ObjectKey(f"uploads/SH-AAAA-22/{size}")
    assert await store.put(key, _feed(pieces)) == size
    info = await store.head(key)
    assert info is not None and info.size == size and info.key == key
    got = b""
    async for piece in store.get(key):
        assert len(piece) <= 16 * MiB
        got += piece
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


async def test_put_replaces_the_whole_object(store: ObjectStore) -> None:
    key = ObjectKey("archives/SH-AAAA-22.zip")
    await store.put(key, _feed([b"first version, long " * 100]))
    await store.put(key, _feed([b"second"]))
    assert await _read(store, key) == b"second"


async def test_missing_objects(store: ObjectStore) -> None:
    key = ObjectKey("uploads/none/1")
    assert await store.head(key) is None
    with pytest.raises(ObjectNotFound, match="uploads/none/1"):
        await _read(store, key)
    await store.delete(key)  # nothing there: nothing happens


async def test_delete_is_idempotent_and_final(store: ObjectStore) -> None:
    key = ObjectKey("uploads/SH-AAAA-22/1")
    await store.put(key, _feed([b"payload"]))
    await store.delete(key)
    await store.delete(key)
    assert await store.head(key) is None
    assert await _keys(store) == set()


async def test_listing_by_whole_segments(store: ObjectStore) -> None:
    for name in ("uploads/A/1", "uploads/A/2", "uploads/B/1", "uploads2/A/1", "archives/A.zip"):
        await store.put(ObjectKey(name), _feed([name.encode()]))
    assert await _keys(store, "uploads") == {"uploads/A/1", "uploads/A/2", "uploads/B/1"}
    assert await _keys(store, "uploads/A") == {"uploads/A/1", "uploads/A/2"}
    assert await _keys(store, "nothing") == set()
    assert len(await _keys(store)) == 5
    sizes = {info.key: info.size async for info in store.list(ObjectKey("archives"))}
    assert sizes == {"archives/A.zip": len(b"archives/A.zip")}


async def test_delete_all_of_a_transfers_uploads(store: ObjectStore) -> None:
    for reference in ("SH-AAAA-22", "SH-BBBB-33"):
        for position in (1, 2, 3):
            await store.put(upload_key(reference, position), _feed([b"sealed"]))
        await store.put(archive_key(reference), _feed([b"zip"]))
    assert await delete_all(store, uploads_of("SH-AAAA-22")) == 3
    assert await delete_all(store, uploads_of("SH-AAAA-22")) == 0
    assert await _keys(store) == {"uploads/SH-BBBB-33/1", "uploads/SH-BBBB-33/2",
                                  "uploads/SH-BBBB-33/3", "archives/SH-AAAA-22.zip",
                                  "archives/SH-BBBB-33.zip"}


class SourceBroke(Exception):
    pass


@pytest.mark.parametrize("size", [MiB, PART_SIZE + MiB])
async def test_a_failed_put_leaves_the_old_object(store: ObjectStore, size: int) -> None:
    key = ObjectKey("uploads/SH-AAAA-22/1")
    await store.put(key, _feed([b"old"]))

    async def breaking() -> AsyncIterator[bytes]:
        for _ in range(size // MiB):
            yield b"n" * MiB
        raise SourceBroke("the upload stopped")

    with pytest.raises(SourceBroke):
        await store.put(key, breaking())
    assert await _read(store, key) == b"old"
    assert await _keys(store) == {key}


async def test_an_envelope_goes_in_sealed_and_comes_out_whole(store: ObjectStore) -> None:
    vault = Vault(_decode_key(generate_key()))
    key = ObjectKey("uploads/SH-AAAA-22/1")
    marker = b"NHS-number 943 476 5919 "
    data = marker * 50_000  # 1.2 MB
    pieces = [data[i:i + 100_000] for i in range(0, len(data), 100_000)]
    stored = await store.put(key, encrypt_stream(_feed(pieces), vault, context=key))
    assert stored > len(data)
    raw = await _read(store, key)
    assert marker not in raw and len(raw) == stored
    plain = b"".join([piece async for piece in
                      decrypt_stream(store.get(key), vault, context=key)])
    assert plain == data


async def test_s3_errors_name_the_store_not_the_secret(s3_server: S3Server) -> None:
    env = {**s3_server.env, "AWS_SECRET_ACCESS_KEY": "do-not-print-this-secret"}
    store = open_object_store("s3://bucket-never-made/safehaven", env=env)
    with pytest.raises(ObjectStoreError) as caught:
        await store.put(ObjectKey("uploads/1"), _feed([b"x"]))
    assert "s3://bucket-never-made/safehaven" in str(caught.value)
    assert "do-not-print-this-secret" not in str(caught.value)


async def test_an_interrupted_s3_upload_is_aborted(s3_server: S3Server) -> None:
    bucket = s3_server.bucket()
    store = open_object_store(f"s3://{bucket}/safehaven", env=s3_server.env)

    async def breaking() -> AsyncIterator[bytes]:
        for _ in range(PART_SIZE // MiB + 2):
            yield b"m" * MiB
        raise SourceBroke("the upload stopped")

    with pytest.raises(SourceBroke):
        await store.put(ObjectKey("uploads/SH-AAAA-22/1"), breaking())
    assert s3_server.pending_uploads(bucket) == []
    assert await _keys(store) == set()
