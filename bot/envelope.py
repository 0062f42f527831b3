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
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import AsyncIterable, AsyncIterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.vault import Vault, VaultError

MAGIC = b"SHE\x01"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
_PREFIX_SIZE = 8
_LENGTH_SIZE = 2
_MAX_SEALED_KEY = 1024
_MAX_CHUNKS = 2**32


class EnvelopeError(Exception):
    """An envelope that will not open: not one, another key's, altered or truncated."""


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
