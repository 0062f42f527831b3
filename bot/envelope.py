"""Envelope encryption of uploads before they leave the host, streaming and in chunks.

Each object gets its own random 256-bit data key, sealed under the server key with
:meth:`bot.vault.Vault.seal` and the object's context (its key) as the reference, so an
envelope copied under another name does not open. The plaintext is cut into chunks of
:data:`CHUNK_SIZE` bytes, each sealed with AES-256-GCM under the data key::

    envelope = MAGIC | len(sealed key) (2 bytes) | sealed key | nonce prefix (8 bytes)
               | chunk 0 | chunk 1 | ... | final chunk          (each chunk: ciphertext | tag)

Chunk ``i`` has the nonce ``prefix | i`` (4 bytes, big-endian) and the associated data
``i | final flag``: a chunk moved, swapped, dropped or added, a truncated envelope (its last
chunk was not sealed as final) or one byte changed anywhere fails with
:class:`EnvelopeError`. Every chunk but the last is full, the last holds 0 to CHUNK_SIZE
bytes, so memory stays at a few chunks whatever the size of the object.
:class:`EnvelopeReader` reads an envelope held in a local file at random, for packaging
(which samples a file before streaming it).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.vault import Vault, VaultError, sealed_key_id

MAGIC = b"SHE\x01"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
_PREFIX_SIZE = 8
_LENGTH_SIZE = 2
_MAX_SEALED_KEY = 1024
_MAX_CHUNKS = 2**32
#: The header's length for a data key sealed by :meth:`Vault.seal` (a fixed-length format),
#: to tell an envelope's plaintext size from its size alone.
STANDARD_HEADER_SIZE = (len(MAGIC) + _LENGTH_SIZE + _PREFIX_SIZE
                        + len(Vault(bytes(32)).seal("A" * 44, reference="-")))


class EnvelopeError(Exception):
    """An envelope that will not open: not one, another key's, altered or truncated."""


def header_size(first: bytes) -> int | None:
    """The length of the envelope's header, read from its first bytes (at least 6); None
    when they are not the start of an envelope."""
    fixed = len(MAGIC) + _LENGTH_SIZE
    if len(first) < fixed or first[:len(MAGIC)] != MAGIC:
        return None
    sealed_length = int.from_bytes(first[len(MAGIC):fixed], "big")
    if not 0 < sealed_length <= _MAX_SEALED_KEY:
        return None
    return fixed + sealed_length + _PREFIX_SIZE


def header_key_id(header: bytes) -> str | None:
    """The id of the server key that sealed the data key of the envelope whose header
    (at least) ``header`` holds; None for a data key sealed before keys had ids, or when
    ``header`` is not a whole envelope header."""
    end = header_size(header)
    if end is None or len(header) < end:
        return None
    fixed = len(MAGIC) + _LENGTH_SIZE
    try:
        return sealed_key_id(header[fixed:end - _PREFIX_SIZE].decode("ascii"))
    except UnicodeDecodeError:
        return None


def reseal_header(header: bytes, vault: Vault, *, context: str) -> bytes | None:
    """The envelope header ``header`` (exactly its bytes, :func:`header_size`) with its data
    key sealed again under ``vault``'s current key, for an envelope sealed for
    ``context``; None when it already is. The chunks after the header stay as they are
    (the data key does not change). :class:`EnvelopeError` when no configured key opens
    it or it is not a header."""
    end = header_size(header)
    if end is None or len(header) != end:
        raise EnvelopeError("not a Safe Haven envelope header")
    fixed = len(MAGIC) + _LENGTH_SIZE
    sealed = header[fixed:end - _PREFIX_SIZE]
    try:
        resealed = vault.reseal(sealed.decode("ascii"), reference=context)
    except (VaultError, UnicodeDecodeError):
        raise EnvelopeError("the envelope's data key does not open with any configured "
                            "server key") from None
    if resealed is None:
        return None
    new = resealed.encode("ascii")
    return MAGIC + len(new).to_bytes(_LENGTH_SIZE, "big") + new + header[end - _PREFIX_SIZE:]


def plaintext_size(envelope_size: int, header: int) -> int | None:
    """How many bytes of plaintext an envelope of ``envelope_size`` bytes, ``header`` of them
    its header, holds; None when no envelope has that shape (it was truncated)."""
    body = envelope_size - header
    if body < TAG_SIZE:
        return None
    chunks = -(-body // SEALED_CHUNK_SIZE)
    if body - (chunks - 1) * SEALED_CHUNK_SIZE < TAG_SIZE:
        return None
    return body - chunks * TAG_SIZE


def _nonce(prefix: bytes, index: int) -> bytes:
    if index >= _MAX_CHUNKS:
        raise EnvelopeError("object too large for one envelope")
    return prefix + index.to_bytes(4, "big")


def _associated(index: int, *, final: bool) -> bytes:
    return MAGIC + index.to_bytes(4, "big") + (b"\x01" if final else b"\x00")


async def encrypt_stream(chunks: AsyncIterable[bytes], vault: Vault, *,
                         context: str) -> AsyncIterator[bytes]:
    """The envelope of the bytes of ``chunks``, in chunks, under a fresh data key sealed by
    ``vault`` for ``context`` (ASCII, e.g. the object key); open it with
    :func:`decrypt_stream` and the same context."""
    data_key = AESGCM.generate_key(bit_length=256)
    sealed = vault.seal(base64.urlsafe_b64encode(data_key).decode("ascii"),
                        reference=context).encode("ascii")
    prefix = secrets.token_bytes(_PREFIX_SIZE)
    aead = AESGCM(data_key)
    yield MAGIC + len(sealed).to_bytes(_LENGTH_SIZE, "big") + sealed + prefix
    pending = bytearray()
    index = 0
    async for piece in chunks:
        pending += piece
        start = 0
        # A full chunk goes out as not final only once more bytes follow it.
        while len(pending) - start > CHUNK_SIZE:
            block = pending[start:start + CHUNK_SIZE]
            yield aead.encrypt(_nonce(prefix, index), bytes(block),
                               _associated(index, final=False))
            index += 1
            start += CHUNK_SIZE
        del pending[:start]
    yield aead.encrypt(_nonce(prefix, index), bytes(pending), _associated(index, final=True))


def _open_data_key(sealed: bytes, vault: Vault, context: str) -> AESGCM:
    try:
        encoded = vault.open(sealed.decode("ascii"), reference=context)
        key = base64.b64decode(encoded, altchars=b"-_", validate=True)
    except (VaultError, UnicodeDecodeError, binascii.Error, ValueError):
        raise EnvelopeError("the envelope's data key does not open with this server key "
                            "(another key, or another object's envelope)") from None
    if len(key) != 32:
        raise EnvelopeError("the envelope's data key is not a 256-bit key")
    return AESGCM(key)


def _parse_header(buffer: bytearray, vault: Vault,
                  context: str) -> tuple[AESGCM, bytes, int] | None:
    """(cipher, nonce prefix, header length) once ``buffer`` holds the whole header."""
    fixed = len(MAGIC) + _LENGTH_SIZE
    if len(buffer) < fixed:
        if not MAGIC.startswith(bytes(buffer[:len(MAGIC)])):
            raise EnvelopeError("not a Safe Haven envelope")
        return None
    if bytes(buffer[:len(MAGIC)]) != MAGIC:
        raise EnvelopeError("not a Safe Haven envelope")
    sealed_length = int.from_bytes(buffer[len(MAGIC):fixed], "big")
    if not 0 < sealed_length <= _MAX_SEALED_KEY:
        raise EnvelopeError("not a Safe Haven envelope (bad header)")
    end = fixed + sealed_length + _PREFIX_SIZE
    if len(buffer) < end:
        return None
    aead = _open_data_key(bytes(buffer[fixed:fixed + sealed_length]), vault, context)
    return aead, bytes(buffer[end - _PREFIX_SIZE:end]), end


def _open_chunk(aead: AESGCM, prefix: bytes, index: int, block: bytes, *,
                final: bool) -> bytes:
    try:
        return aead.decrypt(_nonce(prefix, index), block, _associated(index, final=final))
    except InvalidTag:
        raise EnvelopeError(f"chunk {index} of the envelope failed authentication: the object "
                            "was altered, reordered or truncated") from None


async def decrypt_stream(chunks: AsyncIterable[bytes], vault: Vault, *,
                         context: str) -> AsyncIterator[bytes]:
    """The plaintext of the envelope in ``chunks``, chunk by chunk, each authenticated before
    it is yielded; :class:`EnvelopeError` as soon as anything does not check out. A consumer
    must treat what it got as void when the error comes (it may come at the very end: a
    truncated envelope is known only there)."""
    buffer = bytearray()
    header: tuple[AESGCM, bytes, int] | None = None
    index = 0
    async for piece in chunks:
        buffer += piece
        if header is None:
            header = _parse_header(buffer, vault, context)
            if header is None:
                continue
            del buffer[:header[2]]
        aead, prefix, _ = header
        start = 0
        # A full sealed chunk is not the final one only when more bytes follow it.
        while len(buffer) - start > SEALED_CHUNK_SIZE:
            block = bytes(buffer[start:start + SEALED_CHUNK_SIZE])
            yield _open_chunk(aead, prefix, index, block, final=False)
            index += 1
            start += SEALED_CHUNK_SIZE
        del buffer[:start]
    if header is None:
        raise EnvelopeError("the envelope ends inside its header (truncated)")
    if len(buffer) < TAG_SIZE:
        raise EnvelopeError("the envelope ends inside a chunk (truncated)")
    aead, prefix, _ = header
    yield _open_chunk(aead, prefix, index, bytes(buffer), final=True)


class EnvelopeReader(io.RawIOBase):
    """The plaintext of an envelope held in a local, seekable file (its ciphertext, e.g. an
    upload copied down from the object store), as a read-only, seekable binary file that
    decrypts one chunk at a time: packaging can sample and stream it without the plaintext
    ever being written anywhere. Each chunk is authenticated when it is read; a truncated
    envelope fails on reaching its end. Blocking: use it from a worker thread."""

    def __init__(self, sealed: BinaryIO, vault: Vault, *, context: str) -> None:
        super().__init__()
        self._file = sealed
        self._file.seek(0)
        buffer = bytearray()
        header: tuple[AESGCM, bytes, int] | None = None
        while header is None:
            piece = self._file.read(4096)
            if not piece:
                raise EnvelopeError("the envelope ends inside its header (truncated)")
            buffer += piece
            header = _parse_header(buffer, vault, context)
        self._aead, self._prefix, self._start = header
        body = self._file.seek(0, os.SEEK_END) - self._start
        if body < TAG_SIZE:
            raise EnvelopeError("the envelope ends inside a chunk (truncated)")
        self._chunks = -(-body // SEALED_CHUNK_SIZE)
        if body - (self._chunks - 1) * SEALED_CHUNK_SIZE < TAG_SIZE:
            raise EnvelopeError("the envelope ends inside a chunk (truncated)")
        self.size = body - self._chunks * TAG_SIZE
        self._position = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def _chunk(self, index: int) -> bytes:
        if self._cached is None or self._cached[0] != index:
            self._file.seek(self._start + index * SEALED_CHUNK_SIZE)
            block = self._file.read(SEALED_CHUNK_SIZE)
            plain = _open_chunk(self._aead, self._prefix, index, block,
                                final=index == self._chunks - 1)
            self._cached = (index, plain)
        return self._cached[1]

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._position < self.size:
            index, skip = divmod(self._position, CHUNK_SIZE)
            part = self._chunk(index)[skip:skip + len(view) - filled]
            view[filled:filled + len(part)] = part
            filled += len(part)
            self._position += len(part)
        if self._position >= self.size and self._chunks and filled == 0 and len(view):
            self._chunk(self._chunks - 1)  # at the end: the final chunk checks out
        return filled
