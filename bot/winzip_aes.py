"""WinZip AE-2 (AES-256) encryption for zip members, fast: OpenSSL instead of pyzipper's own.

pyzipper's AES path is slow: profiling showed pycryptodome's CTR (~1 GB/s) and HMAC-SHA1
(~650 MB/s), each returning a freshly allocated ``bytes`` per 8 KiB chunk.
:class:`WinZipAesEncrypter` does the same AE-2 encryption with OpenSSL (via
``cryptography``: AES-NI, SHA-NI) into buffers reused between 1 MiB chunks, and computes the
HMAC-SHA1 on a second thread while the next chunk is read and encrypted (OpenSSL releases
the GIL). :class:`ArchiveWriter` plugs it into ``pyzipper.AESZipFile`` through subclasses,
so pyzipper itself is not patched; its member writer skips the CRC-32 (AE-2 stores 0) and
deflates 1 MiB pieces of a member on all cores (see :class:`_AesMemberWriter`).
"""

from __future__ import annotations

import os
import secrets
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any, Final

import pyzipper
from Cryptodome.Util.strxor import strxor
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from pyzipper.zipfile import _ZipWriteFile
from pyzipper.zipfile_aes import WZ_AES_V2, WZ_AES_VENDOR_ID

_AES_KEY_BYTES: Final = 32
_SALT_BYTES: Final = 16
_VERIFIER_BYTES: Final = 2
_HMAC_BYTES: Final = 10
_AES_STRENGTH_256: Final = 3
_PBKDF2_ITERATIONS: Final = 1000  # fixed by the WinZip AE format
_PAGE_BLOCKS: Final = 1 << 16
_PAGE_BYTES: Final = _PAGE_BLOCKS * 16  # keystream computed 1 MiB at a time
#: Chunks at least this large are hashed (and written) on the encrypter's thread; smaller
#: ones inline (a member of a few KiB would spend more on the hand-over than on the hash).
_ASYNC_MIN: Final = 64 * 1024
#: Ciphertext buffers in rotation: one being hashed and written while the next is filled.
_SLOTS: Final = 3
#: Deflate's window: each piece is primed with this much of the previous piece's input.
_WINDOW: Final = 32 * 1024

#: Where ciphertext goes: the archive file's ``write``.
Writer = Callable[[memoryview], object]


@cache
def _counter_page_template() -> bytes:
    """Counter blocks 0..65535 as 128-bit little-endian integers, back to back.

    Page ``m`` of the keystream encrypts counters ``m * 65536 + i``; those differ from this
    template only in bytes 2-15 of each block, which hold ``m`` for the whole page.
    """
    template = bytearray(_PAGE_BYTES)
    template[0::16] = bytes(range(256)) * 256
    template[1::16] = b"".join(bytes([high]) * 256 for high in range(256))
    return bytes(template)


class WinZipAesEncrypter:
    """WinZip AE-2, AES-256: PBKDF2-HMAC-SHA1 keys, AES-CTR, HMAC-SHA1 over the ciphertext.

    Replaces pyzipper's ``AESZipEncrypter`` with identical output. WinZip's CTR counter is
    a little-endian integer starting at 1, which OpenSSL's CTR mode (big-endian) cannot
    produce, so the keystream is AES-ECB over counter blocks kept in a reused buffer, and
    then XORed onto the data (``strxor``); every step writes into buffers reused between
    chunks, because allocating 1 MiB per call was what made the naive version slow.

    The HMAC of a large chunk (and, through :meth:`encrypt_and_write`, its write to the
    archive) runs on a thread of this encrypter's own, in order, while the caller reads
    and encrypts the next chunk: the two halves of the work are about equal, so a member
    uses two cores.
    """

    hmac_size = _HMAC_BYTES

    def __init__(self, password: bytes) -> None:
        salt = secrets.token_bytes(_SALT_BYTES)
        key_material = PBKDF2HMAC(
            algorithm=hashes.SHA1(),  # noqa: S303 - mandated by the WinZip AES format
            length=2 * _AES_KEY_BYTES + _VERIFIER_BYTES,
            salt=salt,
            iterations=_PBKDF2_ITERATIONS,
        ).derive(password)
        aes_key = key_material[:_AES_KEY_BYTES]
        mac_key = key_material[_AES_KEY_BYTES : 2 * _AES_KEY_BYTES]
        self._header = salt + key_material[2 * _AES_KEY_BYTES :]
        # ECB only encrypts counter blocks: together with the XOR below this is CTR mode.
        self._ecb = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()  # noqa: S305
        self._mac = hmac.HMAC(mac_key, hashes.SHA1())  # noqa: S303 - WinZip AES format
        self._counters: bytes | bytearray = _counter_page_template()  # page 0's
        self._page_number = bytes(14)  # what bytes 2-15 of every counter block hold now
        self._keystream = bytearray(_PAGE_BYTES + 15)  # update_into needs block_size - 1 spare
        self._keystream_view = memoryview(self._keystream)[:_PAGE_BYTES]
        self._page = 0
        self._ready = 0  # bytes of the page's keystream computed so far
        self._position = 16  # byte offset into the keystream; counter 0 is never used
        self._slots = [bytearray() for _ in range(_SLOTS)]
        self._pending: list[Future[None] | None] = [None] * _SLOTS
        self._slot = 0
        self._worker: ThreadPoolExecutor | None = None

    # pyzipper's encrypter interface ----------------------------------------------------

    def update_zipinfo(self, zinfo: Any) -> None:
        zinfo.wz_aes_vendor_id = WZ_AES_VENDOR_ID
        zinfo.wz_aes_strength = _AES_STRENGTH_256
        zinfo.wz_aes_version = WZ_AES_V2

    def finalize_zipinfo(self, zinfo: Any) -> None:
        """Always AE-2: the CRC stays 0, so it cannot leak anything about short files."""

    def encryption_header(self) -> bytes:
        return self._header

    def encrypt(self, data: bytes | bytearray | memoryview) -> bytes | memoryview:
        """Ciphertext of ``data``, valid until the call after next (its buffer is reused)."""
        return self._encrypt(data, None)

    def flush(self) -> bytes:
        """The authentication code, once every chunk has been hashed."""
        self.wait()
        return self._mac.finalize()[:_HMAC_BYTES]

    # beyond pyzipper's interface -------------------------------------------------------

    def encrypt_and_write(self, data: bytes | bytearray | memoryview, write: Writer) -> int:
        """Encrypt ``data`` and have its ciphertext hashed, then passed to ``write``, on this
        encrypter's thread (in order, after everything handed over before). Returns the
        ciphertext's size. Call :meth:`wait` before writing to the same file otherwise."""
        return len(self._encrypt(data, write))

    def wait(self) -> None:
        """Wait until the thread has hashed (and written) every chunk; re-raise its error."""
        if self._worker is None:
            return
        try:
            for pending in self._pending:
                if pending is not None:
                    pending.result()
        finally:
            self._pending = [None] * _SLOTS
            self._worker.shutdown()
            self._worker = None

    def _encrypt(
        self, data: bytes | bytearray | memoryview, write: Writer | None
    ) -> bytes | memoryview:
        source = memoryview(data).cast("B")
        size = source.nbytes
        if size == 0:
            return b""
        slot = self._slot
        self._slot = (slot + 1) % _SLOTS
        pending = self._pending[slot]
        if pending is not None:
            pending.result()  # the thread is done with this buffer
            self._pending[slot] = None
        if len(self._slots[slot]) < size:
            self._slots[slot] = bytearray(size)
        out = memoryview(self._slots[slot])[:size]
        done = 0
        while done < size:
            page, offset = divmod(self._position, _PAGE_BYTES)
            step = min(size - done, _PAGE_BYTES - offset)
            self._compute_keystream(page, offset + step)
            strxor(
                source[done : done + step],  # type: ignore[arg-type]  # stub says bytes
                self._keystream_view[offset : offset + step],  # type: ignore[arg-type]
                output=out[done : done + step],
            )
            done += step
            self._position += step
        if size >= _ASYNC_MIN or self._worker is not None:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="winzip-hmac")
            self._pending[slot] = self._worker.submit(self._authenticate, out, write)
        else:
            self._authenticate(out, write)
        return out

    def _authenticate(self, ciphertext: memoryview, write: Writer | None) -> None:
        self._mac.update(ciphertext)
        if write is not None:
            write(ciphertext)

    def _compute_keystream(self, page: int, end: int) -> None:
        """Make bytes ``[0, end)`` of keystream page ``page`` available.

        Only the blocks needed so far are encrypted (a small member costs a few blocks,
        not a whole page). A new page rewrites just the counter bytes that differ from the
        previous page's, in place (usually byte 2 of each block): no per-page buffers.
        """
        if page != self._page:
            number = page.to_bytes(14, "little")
            if not isinstance(self._counters, bytearray):
                self._counters = bytearray(self._counters)
            for index, (old, new) in enumerate(zip(self._page_number, number, strict=True)):
                if old != new:
                    self._counters[2 + index :: 16] = bytes([new]) * _PAGE_BLOCKS
            self._page_number = number
            self._page = page
            self._ready = 0
        if end > self._ready:
            stop = min(-(-end // 16) * 16, _PAGE_BYTES)
            self._ecb.update_into(
                memoryview(self._counters)[self._ready : stop],
                memoryview(self._keystream)[self._ready : stop + 15],
            )
            self._ready = stop


@cache
def _deflate_pool() -> ThreadPoolExecutor:
    """Threads that deflate pieces of members (zlib releases the GIL): one per core."""
    return ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="winzip-deflate")


def _deflate_piece(data: bytes, level: int, window: bytes) -> bytes:
    """Raw deflate of one piece, primed with the previous piece's last 32 KiB, ending on a
    byte boundary (a sync flush) so that pieces concatenate into one deflate stream."""
    if window:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=window)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


class _AesMemberWriter(_ZipWriteFile):  # type: ignore[misc]  # pyzipper is untyped
    """pyzipper's member writer, minus work AE-2 does not need, plus parallel deflate.

    * No CRC-32: an AE-2 member stores 0 in its place (integrity is the HMAC), yet stock
      pyzipper computes it over every byte.
    * A deflated member is compressed in 1 MiB pieces on :func:`_deflate_pool`, like pigz:
      each piece is primed with the 32 KiB before it and ends with a sync flush, and the
      member's compressor, fed nothing, closes the stream with an empty final block. The
      pieces are encrypted and written in order, so the output is one ordinary deflate
      stream and the same whatever the thread timing; at most ``_AHEAD`` pieces are in
      flight, so memory stays flat.

    Members encrypted otherwise than by :class:`WinZipAesEncrypter`, or compressed
    otherwise than with deflate, are written by pyzipper's own code.
    """

    _AHEAD: Final = 2 * (os.cpu_count() or 2)
    _compressor: Any  # set by pyzipper's __init__

    def __init__(self, zf: Any, zinfo: Any, zip64: bool, encrypter: Any = None) -> None:
        super().__init__(zf, zinfo, zip64, encrypter)
        self._fast = isinstance(encrypter, WinZipAesEncrypter)
        self._pool = (
            _deflate_pool() if self._fast and zinfo.compress_type == pyzipper.ZIP_DEFLATED else None
        )
        self._level = (
            zlib.Z_DEFAULT_COMPRESSION if zinfo._compresslevel is None else zinfo._compresslevel
        )
        self._window = b""
        self._pieces: deque[Future[bytes]] = deque()

    def write(self, data: Any) -> int:
        if not self._fast:
            return int(super().write(data))
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        view = memoryview(data).cast("B")
        size = view.nbytes
        self._file_size += size
        if self._pool is None:
            self._emit(view)
            return size
        piece = bytes(view)  # the caller reuses its buffer
        self._pieces.append(self._pool.submit(_deflate_piece, piece, self._level, self._window))
        self._window = piece[-_WINDOW:]
        while len(self._pieces) > self._AHEAD:
            self._emit(self._pieces.popleft().result())
        return size

    def close(self) -> None:
        if self.closed or not self._fast:
            super().close()
            return
        try:
            while self._pieces:
                self._emit(self._pieces.popleft().result())
            if self._pool is not None:
                # Fed nothing, the member's compressor ends the stream: an empty final block.
                finisher: Any = self._compressor
                self._emit(finisher.flush())
                self._compressor = None
        finally:
            for pending in self._pieces:
                pending.cancel()
            # Whatever happened, nothing of ours writes to the file after this; and
            # pyzipper writes the rest (the HMAC, the header) itself.
            self._encrypter.wait()
        super().close()

    def _emit(self, data: Any) -> None:
        self._compress_size += self._encrypter.encrypt_and_write(data, self._fileobj.write)


class ArchiveWriter(pyzipper.AESZipFile):  # type: ignore[misc]  # pyzipper is untyped
    """``AESZipFile`` that encrypts with ``WinZipAesEncrypter`` (see ``_AesMemberWriter``)."""

    zipwritefile_cls = _AesMemberWriter

    def get_encrypter(self) -> WinZipAesEncrypter:
        return WinZipAesEncrypter(self.pwd)
