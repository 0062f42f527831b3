"""Local files to chunks and back: exact bytes, private mode, nothing left after a failure;
and the path an upload takes for packaging (sealed, stored, copied down, read in place)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.chunks import read_chunks, write_chunks
from bot.envelope import EnvelopeReader, decrypt_stream, encrypt_stream
from bot.objects import upload_key
from bot.vault import Vault, _decode_key, generate_key
from store.objects.local import LocalObjectStore


async def test_round_trip_in_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # 2.3 MB
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    pieces = [piece async for piece in read_chunks(source, chunk_size=100_000)]
    assert max(len(p) for p in pieces) == 100_000 and b"".join(pieces) == data
    target = tmp_path / "copy.bin"
    assert await write_chunks(read_chunks(source), target) == len(data)
    assert target.read_bytes() == data and stat.S_IMODE(target.stat().st_mode) == 0o600


async def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"half"
        raise ConnectionResetError("download stopped")

    target = tmp_path / "partial.bin"
    with pytest.raises(ConnectionResetError):
        await write_chunks(broken(), target)
    assert not target.exists()


async def test_an_upload_sealed_stored_and_read_for_packaging(tmp_path: Path) -> None:
    vault = Vault(_decode_key(generate_key()))
    store = LocalObjectStore(tmp_path / "objects")
    plain = tmp_path / "referral.pdf"
    plain.write_bytes(b"%PDF-1.7 Julia Smith referral " * 10_000)
    key = upload_key("SH-AAAA-22", 1)
    await store.put(key, encrypt_stream(read_chunks(plain), vault, context=key))
    stored = (tmp_path / "objects" / "uploads" / "SH-AAAA-22" / "1").read_bytes()
    assert b"Julia Smith" not in stored
    copied = tmp_path / "packaging" / "1.sealed"
    copied.parent.mkdir()
    await write_chunks(store.get(key), copied)
    with copied.open("rb") as raw, EnvelopeReader(raw, vault, context=key) as reader:
        assert reader.read() == plain.read_bytes()
    streamed = b"".join([p async for p in decrypt_stream(store.get(key), vault, context=key)])
    assert streamed == plain.read_bytes()
