"""Object keys are relative names in a small alphabet, never a host's path."""

from __future__ import annotations

import pytest

from bot.objects import ObjectKey, ObjectKeyError, archive_key, upload_key, uploads_of


@pytest.mark.parametrize("text", [
    "uploads/SH-AAAA-22/1", "archives/SH-AAAA-22.zip", "a", "A_b-c.d/e", "x" * 128,
])
def test_valid_keys(text: str) -> None:
    key = ObjectKey(text)
    assert key == text and isinstance(key, str)
    assert "/".join(key.parts) == text


@pytest.mark.parametrize("text", [
    "", "/etc/passwd", "uploads/", "uploads//1", "../secret", "uploads/../../etc",
    "uploads/./1", ".hidden", "uploads/.partial-1", "with space", "back\\slash", "tab\tkey",
    "naïve", "x" * 129, "/".join(["abc"] * 200), "C:/Windows", "new\nline",
])
def test_invalid_keys_are_refused(text: str) -> None:
    with pytest.raises(ObjectKeyError):
        ObjectKey(text)


def test_child_is_validated_too() -> None:
    assert ObjectKey("uploads").child("SH-AAAA-22/1") == "uploads/SH-AAAA-22/1"
    with pytest.raises(ObjectKeyError):
        ObjectKey("uploads").child("../archives")


def test_where_a_transfers_objects_live() -> None:
    assert upload_key("SH-AAAA-22", 1) == "uploads/SH-AAAA-22/1"
    assert uploads_of("SH-AAAA-22") == "uploads/SH-AAAA-22"
    assert archive_key("SH-AAAA-22") == "archives/SH-AAAA-22.zip"
    for bad in ("../x", "SH AAAA", ""):
        with pytest.raises(ObjectKeyError):
            upload_key(bad, 1)
        with pytest.raises(ObjectKeyError):
            archive_key(bad)
    with pytest.raises(ObjectKeyError):
        upload_key("SH-AAAA-22", 0)
