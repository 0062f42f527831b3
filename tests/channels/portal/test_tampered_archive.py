"""An archive altered in the object store is never served: the recipient's download fails
(a 404 before anything is promised, or a connection cut before the last bytes), nothing is
counted, the sender is told and the refusal is audited. Attacks go through the portal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.envelope import SEALED_CHUNK_SIZE, STANDARD_HEADER_SIZE
from bot.messages import transfers as msg
from bot.objects import archive_key
from handlers.services import Services
from tests.channels.portal.conftest import (
    MB,
    Share,
    audit_rows,
    audited,
    link_row,
    put_archive,
)
from tests.support.objects import object_bytes

Client = TestClient[Any, Any]


async def _replace(svc: Services, reference: str, data: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await svc.objects.put(archive_key(reference), chunks())


def _told(svc: Services, reference: str) -> int:
    notifier: Any = svc.notifier
    text = msg.ARCHIVE_TAMPERED.format(reference=reference)
    return sum(getattr(r, "text", "") == text for r in notifier.for_user("console:alice"))


async def _refused(svc: Services, reference: str) -> None:
    """Nothing counted, the refusal audited, the sender told once."""
    assert (await link_row(svc, reference)).downloads == 0
    actions = [r.action for r in await audit_rows(svc, reference)]
    assert actions.count("archive_integrity_failed") == 1
    assert "downloaded" not in actions
    assert _told(svc, reference) == 1


def _flip(at: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


@pytest.mark.parametrize("attack", ["unsealed zip", "byte flipped in the header",
                                    "byte flipped in the first chunk", "emptied"])
async def test_a_substituted_archive_is_refused_before_anything_is_sent(
        services: Services, share: Share, client: Client, attack: str) -> None:
    link = await share()
    sealed = await object_bytes(services.objects, archive_key(link.reference))
    forged = {"unsealed zip": b"PK\x03\x04 an archive of the attacker's own" * 100,
              "byte flipped in the header": _flip(40)(sealed),
              "byte flipped in the first chunk": _flip(len(sealed) - 5)(sealed),
              "emptied": b""}[attack]
    await _replace(services, link.reference, forged)
    answer = await client.post(link.path)
    assert answer.status == 404
    assert b"PK" not in await answer.read()
    await _refused(services, link.reference)


async def test_another_transfers_archive_copied_over_is_refused(
        services: Services, share: Share, client: Client) -> None:
    mine, theirs = await share(), await share()
    other = await object_bytes(services.objects, archive_key(theirs.reference))
    await _replace(services, mine.reference, other)
    assert (await client.post(mine.path)).status == 404
    await _refused(services, mine.reference)
    good = await client.post(theirs.path)  # the other transfer's own link still works
    assert good.status == 200 and (await good.read()).startswith(b"PK")


@pytest.mark.parametrize("attack", ["byte flipped in the last chunk", "last chunk cut off",
                                    "chunks swapped"])
async def test_a_change_deep_in_a_large_archive_cuts_the_download_short(
        services: Services, share: Share, client: Client, attack: str) -> None:
    link = await share()
    await put_archive(services, link.reference, megabytes=2,
                      fill=lambda n: b"\x5a" * n)  # a sealed 2 MB archive, many chunks
    sealed = await object_bytes(services.objects, archive_key(link.reference))
    assert len(sealed) == STANDARD_HEADER_SIZE + 32 * SEALED_CHUNK_SIZE  # 32 full chunks
    if attack == "byte flipped in the last chunk":
        forged = _flip(len(sealed) - 20)(sealed)
    elif attack == "last chunk cut off":
        forged = sealed[:-SEALED_CHUNK_SIZE]
    else:
        start = STANDARD_HEADER_SIZE + 29 * SEALED_CHUNK_SIZE
        middle = start + SEALED_CHUNK_SIZE
        forged = (sealed[:start] + sealed[middle:middle + SEALED_CHUNK_SIZE]
                  + sealed[start:middle] + sealed[middle + SEALED_CHUNK_SIZE:])
        assert len(forged) == len(sealed) and forged != sealed
    await _replace(services, link.reference, forged)
    answer = await client.post(link.path)
    received = 0
    if answer.status == 200:  # the start checked out: the stream stops before the end
        with pytest.raises(aiohttp.ClientPayloadError):
            async for piece in answer.content.iter_any():
                received += len(piece)
        assert received < 2 * MB
        await audited(services, link.reference, "download_interrupted")  # given back
    else:
        assert answer.status == 404
    await _refused(services, link.reference)
