"""Migration 0010: the host paths rows stored become object keys, never kept as paths."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from store.db import migrate


def test_paths_become_keys(tmp_path: Path) -> None:
    db = tmp_path / "legacy.db"
    url = f"sqlite+aiosqlite:///{db}"
    migrate(url, "0009")
    engine = sa.create_engine(f"sqlite:///{db}")
    var = tmp_path / "var"
    now = "2026-11-24 10:00:00.000000"
    with engine.begin() as conn:
        for ref, archive in (("SH-AAAA-11", f"{var}/archives/SH-AAAA-11.zip"),
                             ("SH-BBBB-22", None), ("SH-CCCC-33", "/elsewhere/other.zip")):
            conn.execute(sa.text(
                "INSERT INTO transfers (reference, sender_id, status, archive_path, "
                "archive_size, file_count, total_bytes, created_at, updated_at) VALUES "
                "(:r, 'console:alice', 'ready', :a, 10, 1, 1, :n, :n)"),
                {"r": ref, "a": archive, "n": now})
        for position, stored in enumerate((f"{var}/uploads/{'ab' * 16}/upload.bin",
                                           "/tmp/somewhere/else.txt", None), start=1):
            conn.execute(sa.text(
                "INSERT INTO transfer_files (reference, position, original_name, stored_path, "
                "size, kind) VALUES ('SH-BBBB-22', :p, 'a.txt', :s, 1, 'text')"),
                {"p": position, "s": stored})
    migrate(url)
    with engine.connect() as conn:
        files = conn.execute(sa.text(
            "SELECT stored_path FROM transfer_files ORDER BY position")).scalars().all()
        archives = dict(conn.execute(sa.text(
            "SELECT reference, archive_path FROM transfers")).all())
        sizes = dict(conn.execute(sa.text(
            "SELECT reference, archive_size FROM transfers")).all())
    engine.dispose()
    assert files == [f"uploads/legacy/{'ab' * 16}", None, None]
    assert archives == {"SH-AAAA-11": "archives/SH-AAAA-11.zip", "SH-BBBB-22": None,
                        "SH-CCCC-33": None}
    assert sizes["SH-CCCC-33"] is None and sizes["SH-AAAA-11"] == 10
