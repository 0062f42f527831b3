"""Envelope encryption: the plaintext comes back exactly; any change, truncation,
reordering, other key or other object is refused; memory does not grow with the size."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from bot.envelope import (
    CHUNK_SIZE,
    MAGIC,
    SEALED_CHUNK_SIZE,
    EnvelopeError,
    EnvelopeReader,
    decrypt_stream,
    encrypt_stream,
)
from bot.vault import Vault, _decode_key, generate_key

CONTEXT = "uploads/SH-AAAA-22/1"


@pytest.fixture
def vault() -> Vault:
    return Vault(_decode_key(generate_key()))


async def _feed(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([piece async for piece in stream])


async def _seal(data: bytes, vault: Vault, *, piece: int = 10_000) -> bytes:
    pieces = [data[i:i + piece] for i in range(0, len(data), piece)]
    return await _collect(encrypt_stream(_feed(pieces), vault, context=CONTEXT))


async def _open(envelope: bytes, vault: Vault, *, piece: int = 7_777,
                context: str = CONTEXT) -> bytes:
    pieces = [envelope[i:i + piece] for i in range(0, len(envelope), piece)]
    return await _collect(decrypt_stream(_feed(pieces), vault, context=context))


def _split(envelope: bytes) -> tuple[bytes, list[bytes]]:
    """(header, sealed chunks) of an envelope."""
    header_end = len(MAGIC) + 2 + int.from_bytes(envelope[4:6], "big") + 8
    body = envelope[header_end:]
    return envelope[:header_end], [body[i:i + SEALED_CHUNK_SIZE]
                                   for i in range(0, len(body), SEALED_CHUNK_SIZE)]


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1,
                                  3 * CHUNK_SIZE, 3 * CHUNK_SIZE + 12_345])
async def test_round_trip_at_every_boundary(vault: Vault, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    envelope = await _seal(data, vault)
    assert envelope.startswith(MAGIC)
    assert size < 64 or data[:64] not in envelope
    _, chunks = _split(envelope)
    assert len(chunks) == max(1, -(-size // CHUNK_SIZE))  # a full last chunk is final itself
    for piece in (1, 4096, SEALED_CHUNK_SIZE, len(envelope)):
        assert await _open(envelope, vault, piece=piece) == data


async def test_two_envelopes_of_the_same_bytes_differ(vault: Vault) -> None:
    data = b"confidential" * 1000
    assert await _seal(data, vault) != await _seal(data, vault)


async def test_wrong_server_key_is_refused(vault: Vault) -> None:
    envelope = await _seal(b"secret" * 100, vault)
    other = Vault(_decode_key(generate_key()))
    with pytest.raises(EnvelopeError, match="data key does not open"):
        await _open(envelope, other)


async def test_another_objects_envelope_is_refused(vault: Vault) -> None:
    envelope = await _seal(b"secret" * 100, vault)
    with pytest.raises(EnvelopeError, match="another object"):
        await _open(envelope, vault, context="uploads/SH-BBBB-33/1")


async def test_a_flipped_byte_anywhere_is_refused(vault: Vault) -> None:
    envelope = await _seal(b"p" * (2 * CHUNK_SIZE + 100), vault)
    header, _ = _split(envelope)
    for position in (len(header) - 1, len(header) + 5, len(header) + SEALED_CHUNK_SIZE + 7,
                     len(envelope) - 1):
        tampered = bytearray(envelope)
        tampered[position] ^= 0x01
        with pytest.raises(EnvelopeError, match="failed authentication"):
            await _open(bytes(tampered), vault)
    tampered = bytearray(envelope)
    tampered[10] ^= 0x01  # inside the sealed data key
    with pytest.raises(EnvelopeError, match="data key"):
        await _open(bytes(tampered), vault)


async def test_dropping_the_last_chunk_is_refused(vault: Vault) -> None:
    envelope = await _seal(b"q" * (3 * CHUNK_SIZE + 5), vault)
    header, chunks = _split(envelope)
    with pytest.raises(EnvelopeError, match=r"chunk 2 .*truncated"):
        await _open(header + b"".join(chunks[:-1]), vault)


async def test_truncation_inside_a_chunk_or_header_is_refused(vault: Vault) -> None:
    envelope = await _seal(b"r" * (2 * CHUNK_SIZE), vault)
    header, _ = _split(envelope)
    for cut in (len(envelope) - 1, len(envelope) - 20, len(header) + 10):
        with pytest.raises(EnvelopeError):
            await _open(envelope[:cut], vault)
    for cut in (0, 3, 5, len(header) - 1):
        with pytest.raises(EnvelopeError, match="header"):
            await _open(envelope[:cut], vault)


async def test_swapped_or_repeated_chunks_are_refused(vault: Vault) -> None:
    envelope = await _seal(b"".join(bytes([i]) * CHUNK_SIZE for i in range(4)), vault)
    header, chunks = _split(envelope)
    swapped = [chunks[1], chunks[0], *chunks[2:]]
    with pytest.raises(EnvelopeError, match="chunk 0"):
        await _open(header + b"".join(swapped), vault)
    repeated = [*chunks[:2], chunks[1], *chunks[2:]]
    with pytest.raises(EnvelopeError, match="chunk 2"):
        await _open(header + b"".join(repeated), vault)
    appended = [*chunks, chunks[-1]]
    with pytest.raises(EnvelopeError, match="chunk 3"):
        await _open(header + b"".join(appended), vault)


async def test_chunks_of_another_envelope_do_not_fit(vault: Vault) -> None:
    data = b"s" * (2 * CHUNK_SIZE)
    first_header, first = _split(await _seal(data, vault))
    _, second = _split(await _seal(data, vault))
    with pytest.raises(EnvelopeError, match="chunk 0"):
        await _open(first_header + second[0] + first[1], vault)


async def test_not_an_envelope(vault: Vault) -> None:
    with pytest.raises(EnvelopeError, match="not a Safe Haven envelope"):
        await _open(b"%PDF-1.7 plaintext that was never sealed", vault)
    with pytest.raises(EnvelopeError, match="not a Safe Haven envelope"):
        await _open(MAGIC + b"\x00\x00" + b"x" * 40, vault)


async def test_memory_stays_flat_over_200_mb(vault: Vault) -> None:
    piece = bytes(range(256)) * 4096  # 1 MiB, the same object every time
    total = 200 * len(piece)

    async def source() -> AsyncIterator[bytes]:
        for _ in range(200):
            yield piece

    expected = hashlib.sha256()
    for _ in range(200):
        expected.update(piece)
    digest = hashlib.sha256()
    seen = 0
    tracemalloc.start()
    try:
        sealed = encrypt_stream(source(), vault, context=CONTEXT)
        async for plain in decrypt_stream(sealed, vault, context=CONTEXT):
            digest.update(plain)
            seen += len(plain)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == total and digest.digest() == expected.digest()
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while streaming {total}"


async def test_reader_seeks_and_reads_like_the_plaintext(vault: Vault, tmp_path: Path) -> None:
    data = bytes(random.Random(7).getrandbits(8) for _ in range(3 * CHUNK_SIZE + 999))
    sealed = tmp_path / "upload.sealed"
    sealed.write_bytes(await _seal(data, vault))
    with sealed.open("rb") as raw, EnvelopeReader(raw, vault, context=CONTEXT) as reader:
        assert reader.size == len(data) and reader.seekable()
        assert reader.read() == data
        for offset, length in [(0, 10), (CHUNK_SIZE - 5, 10), (2 * CHUNK_SIZE, CHUNK_SIZE + 7),
                               (len(data) - 3, 100), (len(data) + 5, 10)]:
            reader.seek(offset)
            assert reader.read(length) == data[offset:offset + length]
        reader.seek(-4, os.SEEK_END)
        assert reader.read() == data[-4:] and reader.tell() == len(data)
        reader.seek(0)
        buffered = io.BufferedReader(reader, buffer_size=10_000)
        assert buffered.read(70_000) == data[:70_000]


async def test_reader_refuses_tampering_and_truncation(vault: Vault, tmp_path: Path) -> None:
    envelope = await _seal(b"t" * (2 * CHUNK_SIZE + 10), vault)
    header, chunks = _split(envelope)
    flipped = bytearray(envelope)
    flipped[len(header) + CHUNK_SIZE + 100] ^= 0x01
    truncated = header + b"".join(chunks[:-1])
    for name, content in (("flipped", bytes(flipped)), ("truncated", truncated)):
        path = tmp_path / name
        path.write_bytes(content)
        with path.open("rb") as raw, EnvelopeReader(raw, vault, context=CONTEXT) as reader:
            with pytest.raises(EnvelopeError, match="failed authentication"):
                reader.read()
    path = tmp_path / "whole"
    path.write_bytes(envelope)
    with path.open("rb") as raw, pytest.raises(EnvelopeError, match="another object"):
        EnvelopeReader(raw, vault, context="uploads/SH-BBBB-33/1")
    path.write_bytes(header[:-3])
    with path.open("rb") as raw, pytest.raises(EnvelopeError, match="header"):
        EnvelopeReader(raw, vault, context=CONTEXT)


async def test_reader_of_an_empty_plaintext(vault: Vault, tmp_path: Path) -> None:
    path = tmp_path / "empty.sealed"
    path.write_bytes(await _seal(b"", vault))
    with path.open("rb") as raw, EnvelopeReader(raw, vault, context=CONTEXT) as reader:
        assert reader.size == 0 and reader.read() == b""
