"""Object keys that try to leave the store's folder (``..``, absolute paths, NUL, hidden
or empty segments, backslashes) are refused by every operation of the file store, and
nothing is read or written outside its root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.objects import ObjectKey, ObjectKeyError
from store.objects import open_object_store

HOSTILE = ["../outside", "uploads/../../outside", "/etc/passwd", "uploads/a\x00b",
           "uploads//a", "uploads/", ".partial-x", "uploads/.hidden", "a/./b",
           "..\\outside", "uploads\\..\\..\\outside", "~/x", " ", "a" * 600]


async def _one() -> AsyncIterator[bytes]:
    yield b"data"


@pytest.mark.parametrize("key", HOSTILE)
async def test_every_operation_refuses_a_key_that_leaves_the_store(
        tmp_path: Path, key: str) -> None:
    root = tmp_path / "store"
    store = open_object_store(root.as_uri())
    (tmp_path / "outside").write_bytes(b"not the store's")
    k: Any = key  # as a caller holding a raw string would pass it
    with pytest.raises(ObjectKeyError):
        await store.put(k, _one())
    with pytest.raises(ObjectKeyError):
        await anext(store.get(k))
    with pytest.raises(ObjectKeyError):
        await store.head(k)
    with pytest.raises(ObjectKeyError):
        await store.delete(k)
    with pytest.raises(ObjectKeyError):
        [info async for info in store.list(k)]
    with pytest.raises(ObjectKeyError):
        ObjectKey(key)
    assert _tree(tmp_path) == ["outside", "store"]  # nothing new beside or in the store


def _tree(top: Path) -> list[str]:
    return sorted(str(p.relative_to(top)) for p in top.rglob("*"))
