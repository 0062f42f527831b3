"""File-check benchmark: how long judging a big ZIP blocks the event loop.

    python bench/filecheck.py [--entries 1350000] [--within 100000] [--workdir DIR]

Builds two ZIPs whose central directories are real (one 46-byte record and a one-letter
name per entry, every record pointing at the one local header, ZIP64 end records):

- the hostile one: ``--entries`` entries (1,350,000: 63 MB, the file from issue 11);
- a big one within the limit: ``--within`` entries (at most ``MAX_ARCHIVE_ENTRIES``).

Then, in one event loop, a ticker asks for a 1 ms sleep over and over and records the
largest lateness (the loop lag) while each check runs:

1. bare: nothing else running (the reference);
2. before: the previous code's work on the hostile file, on the loop
   (``zipfile.ZipFile(...).infolist()``, as ``inspect_file`` did);
3. before, in a thread: the same work in ``asyncio.to_thread`` (why not threads: the GIL);
4. after: ``FileInspector.inspect`` on the hostile file (refused from its end records);
5. after: ``FileInspector.inspect`` on the big file within the limit (parsed in a worker);
6. after, in a thread: ``inspect_file`` on the big file in ``asyncio.to_thread``.

Lag is reported in ms and as a ratio to the bare run's lag. Files live in a fresh folder
under ``--workdir`` (default: the system temp dir), removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import struct
import sys
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.filecheck import inspect_file  # noqa: E402
from bot.zip_directory import MAX_ARCHIVE_ENTRIES  # noqa: E402
from handlers.intake import FileInspector  # noqa: E402

TICK = 0.001


def directory_zip(entries: int, name: bytes = b"a") -> bytes:
    """A ZIP of ``entries`` central-directory records, all for one empty stored member."""
    local = b"PK\x03\x04" + struct.pack("<5H3I2H", 20, 0, 0, 0, 0, 0, 0, 0, len(name), 0) + name
    record = struct.pack("<4s6H3I5HII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0,
                         len(name), 0, 0, 0, 0, 0, 0) + name
    directory = record * entries
    zip64_at = len(local) + len(directory)
    zip64 = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                        len(directory), len(local))
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, zip64_at, 1)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                      0xFFFFFFFF, 0)
    return local + directory + zip64 + locator + end


async def lag_while(work: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    """(seconds the work took, largest loop lag in seconds, its result)."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            asked = loop.time()
            await asyncio.sleep(TICK)
            worst = max(worst, loop.time() - asked - TICK)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker is waiting before the work starts
    start = time.perf_counter()
    result = await work()
    took = time.perf_counter() - start
    done = True
    await task
    return took, worst, result


def old_parse(path: Path) -> int:
    """What inspect_file did with every ZIP before: read the whole central directory."""
    with path.open("rb") as f, zipfile.ZipFile(f) as archive:
        return len(archive.infolist())


async def run(hostile: Path, within: Path) -> list[tuple[str, float, float, str]]:
    inspector = FileInspector()
    rows: list[tuple[str, float, float, str]] = []

    async def bare() -> None:
        await asyncio.sleep(1.0)

    async def inline_old() -> int:
        return old_parse(hostile)

    def check(path: Path) -> Callable[[], Awaitable[Any]]:
        async def inspect() -> Any:
            return await inspector.inspect(path, display_name="case.zip", blocked=())
        return inspect

    try:
        await check(within)()  # start the worker: process start-up is not a check
        for label, work in (
            ("bare loop (reference)", bare),
            ("before: hostile ZIP parsed on the loop", inline_old),
            ("before, in a thread: hostile ZIP", lambda: asyncio.to_thread(old_parse, hostile)),
            ("after: hostile ZIP, FileInspector", check(hostile)),
            ("after: ZIP within the limit, FileInspector", check(within)),
            ("after, in a thread: ZIP within the limit",
             lambda: asyncio.to_thread(inspect_file, within, display_name="case.zip",
                                       blocked=())),
        ):
            took, lag, result = await lag_while(work)
            verdict = getattr(result, "kind", "" if result is None else f"{result} entries")
            rows.append((label, took, lag, str(verdict)))
    finally:
        await inspector.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=1_350_000)
    parser.add_argument("--within", type=int, default=MAX_ARCHIVE_ENTRIES)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="safehaven-filecheck-", dir=args.workdir))
    try:
        hostile, within = folder / "hostile.zip", folder / "within.zip"
        hostile.write_bytes(directory_zip(args.entries))
        within.write_bytes(directory_zip(min(args.within, MAX_ARCHIVE_ENTRIES)))
        rows = asyncio.run(run(hostile, within))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores; "
          f"hostile ZIP: {args.entries:,} entries, {args.entries * 47 / 1e6:.1f} MB; "
          f"within the limit: {min(args.within, MAX_ARCHIVE_ENTRIES):,} entries")
    reference = max(rows[0][2], 1e-6)
    print("| check | seconds | max loop lag ms | lag / bare | verdict |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, took, lag, verdict in rows:
        print(f"| {label} | {took:.2f} | {lag * 1000:.1f} | {lag / reference:,.1f}x | "
              f"{verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
