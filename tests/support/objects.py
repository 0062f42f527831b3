"""What the object store holds, for tests: sealed uploads, archives, a plaintext scan."""

from __future__ import annotations

from collections.abc import AsyncIterable

from bot.envelope import decrypt_stream, encrypt_stream
from bot.objects import ARCHIVES, UPLOADS, ObjectKey, ObjectStore, archive_key
from handlers.services import Services


async def keys_under(store: ObjectStore, prefix: ObjectKey) -> list[ObjectKey]:
    return sorted([info.key async for info in store.list(prefix)])


async def upload_objects(svc: Services) -> list[ObjectKey]:
    """Every sealed upload in the store."""
    return await keys_under(svc.objects, UPLOADS)


async def archive_objects(svc: Services) -> list[ObjectKey]:
    return await keys_under(svc.objects, ARCHIVES)


async def archive_plain(svc: Services, reference: str) -> bytes:
    """The (AES-256 zip) archive of ``reference``, out of its envelope in the store."""
    key = archive_key(reference)
    return b"".join([piece async for piece in decrypt_stream(
        svc.objects.get(key), svc.vault, context=key)])


async def put_sealed_archive(svc: Services, reference: str,
                             chunks: AsyncIterable[bytes]) -> None:
    """Put ``chunks`` as the archive of ``reference``, sealed as packaging seals it."""
    key = archive_key(reference)
    await svc.objects.put(key, encrypt_stream(chunks, svc.vault, context=key))


async def object_bytes(store: ObjectStore, key: ObjectKey) -> bytes:
    return b"".join([piece async for piece in store.get(key)])


async def objects_containing(store: ObjectStore, needle: bytes) -> list[ObjectKey]:
    """Every object whose bytes contain ``needle`` (small test objects only)."""
    assert needle
    return [info.key async for info in store.list()
            if needle in await object_bytes(store, info.key)]
