"""Object-store benchmark: uploads, packaging and the portal download through S3 against the
local store, and peak memory, in one run.

    python bench/objectstore.py [--size-mb 1024] [--repeat 1] [--workdir DIR]

Writes ``--size-mb`` MB of noise (``os.urandom``, so nothing compresses) to a file, starts
moto's S3 server (``tests.support.s3.moto_s3``) in a process of its own, then runs the same
measurements in a fresh interpreter for each store: a ``file://`` folder and ``s3://`` on
moto (127.0.0.1), both opened with ``store.objects.open_object_store``:

1. seal: ``handlers.intake.seal_upload`` (``bot.envelope.encrypt_stream`` into
   ``ObjectStore.put``), what every accepted upload goes through;
2. read back: ``bot.envelope.decrypt_stream`` over ``ObjectStore.get`` of that envelope;
3. package: ``handlers.transfers._build_in``, what ``package`` runs (each sealed upload
   copied down with ``bot.chunks.write_chunks``, opened with ``EnvelopeReader``,
   ``bot.packaging.build_archive``, the archive put into the store);
4. portal download: ``handlers.archive_reads.open_archive`` streaming the archive object.

MB/s is of the upload's plaintext (of the archive for the download); MB means 10**6 bytes.
S3/local is the ratio of the two stores' MB/s in this run. Peak memory is the worker's
VmHWM, reset (``/proc/self/clear_refs``) before each step, so each step's high-water mark is
its own; moto's memory is not in it (another process) and is printed apart. Everything is
created in a fresh folder under ``--workdir`` (default: the system temp dir), removed at
the end; disk use is about five times ``--size-mb``, plus moto's spill files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.envelope import decrypt_stream  # noqa: E402
from bot.objects import ObjectKey, ObjectStore  # noqa: E402
from bot.passwords import generate_password  # noqa: E402
from bot.policy import load_policy  # noqa: E402
from bot.policy_rules import Policy  # noqa: E402
from bot.vault import Vault  # noqa: E402
from handlers import archive_reads, intake, transfers  # noqa: E402
from handlers.services import Services  # noqa: E402
from store.objects import open_object_store  # noqa: E402
from store.repositories import TransferFileRecord  # noqa: E402

MB = 1_000_000
MIB = 1 << 20
REFERENCE = "SH-BENCH13"
STEPS = ("seal", "read back", "package", "portal download")
T = TypeVar("T")


# --- In the worker process (one per store) ---------------------------------------------------


def high_water_kib() -> int:
    """VmHWM: the peak RSS of this process since start or since :func:`reset_high_water`."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def reset_high_water() -> None:
    """Set VmHWM back to the current RSS (Linux: ``5`` into clear_refs)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


@dataclass
class PackagingServices:
    """The part of :class:`handlers.services.Services` that ``_build_in`` reads."""

    objects: ObjectStore
    vault: Vault
    policy: Policy


async def drain(chunks: AsyncIterator[bytes]) -> int:
    """Read a stream to its end (where it closes itself); how many bytes it had."""
    total = 0
    async for piece in chunks:
        total += len(piece)
    return total


async def timed(repeat: int, step: Callable[[], Awaitable[T]]) -> tuple[float, int, T]:
    """Median seconds of ``repeat`` runs of ``step``, its VmHWM in KiB, what it last returned."""
    times: list[float] = []
    reset_high_water()
    for _ in range(repeat):
        started = time.perf_counter()
        result = await step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), high_water_kib(), result


async def measure(url: str, source: Path, size: int, work: Path,
                  repeat: int) -> dict[str, Any]:
    """Every step through the store at ``url``, on the ``size`` bytes of plaintext in
    ``source``."""
    store = open_object_store(url)
    vault = Vault(secrets.token_bytes(32))
    figures: dict[str, Any] = {"imports_kib": high_water_kib(), "steps": {}}
    staged = work / "staged"
    staged.mkdir()
    count = 0

    async def seal() -> ObjectKey:
        nonlocal count
        count += 1
        path = staged / f"upload-{count}"
        os.link(source, path)  # seal_upload deletes its staged file; the source stays
        return await intake.seal_upload(store, vault, path)

    seconds, peak, key = await timed(repeat, seal)
    figures["steps"]["seal"] = {"seconds": seconds, "bytes": size, "peak_kib": peak}
    info = await store.head(key)
    figures["sealed_bytes"] = info.size if info else None

    async def read_back() -> int:
        return await drain(decrypt_stream(store.get(key), vault, context=key))

    seconds, peak, read = await timed(repeat, read_back)
    if read != size:
        raise RuntimeError(f"read back {read} bytes of {size}")
    figures["steps"]["read back"] = {"seconds": seconds, "bytes": size, "peak_kib": peak}

    services = cast(Services, PackagingServices(store, vault, load_policy()))
    record = TransferFileRecord(id=1, reference=REFERENCE, position=1,
                                original_name="scan-0001.tif", stored_path=key, size=size,
                                kind="tiff")

    async def package() -> int:
        scratch = Path(tempfile.mkdtemp(prefix="packaging-", dir=work))
        try:
            archive = await transfers._build_in(services, scratch, reference=REFERENCE,
                                                files=[record], password=generate_password())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return archive.size

    seconds, peak, archive_size = await timed(repeat, package)
    figures["steps"]["package"] = {"seconds": seconds, "bytes": size, "peak_kib": peak}
    figures["archive_bytes"] = archive_size

    async def download() -> int:
        opened = await archive_reads.open_archive(store, work / "archives", REFERENCE,
                                                  vault=services.vault)
        if opened is None:
            raise RuntimeError("the archive is not in the store")
        return await drain(opened.chunks)

    seconds, peak, downloaded = await timed(repeat, download)
    if downloaded != archive_size:
        raise RuntimeError(f"downloaded {downloaded} bytes of {archive_size}")
    figures["steps"]["portal download"] = {"seconds": seconds, "bytes": downloaded,
                                           "peak_kib": peak}
    return figures


# --- In the S3 server process ------------------------------------------------------------------


def serve_s3() -> None:
    """moto's S3 server and one bucket; prints its settings, runs until stdin closes."""
    from tests.support.s3 import moto_s3

    with moto_s3() as s3:
        print(json.dumps({"env": s3.env, "bucket": s3.bucket()}), flush=True)
        sys.stdin.read()


# --- In the main process ----------------------------------------------------------------------


def write_noise(path: Path, size: int) -> None:
    """``size`` bytes from ``os.urandom``, written 1 MiB at a time."""
    with path.open("wb") as out:
        left = size
        while left > 0:
            piece = os.urandom(min(MIB, left))
            out.write(piece)
            left -= len(piece)


def process_high_water_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_worker(url: str, source: Path, work: Path, repeat: int,
               env: dict[str, str]) -> dict[str, Any]:
    work.mkdir()
    result = subprocess.run(
        [sys.executable, __file__, "--role", "worker", "--url", url, "--source", str(source),
         "--work", str(work), "--repeat", str(repeat)],
        check=True, capture_output=True, text=True, env={**os.environ, **env})
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def mb_per_s(step: dict[str, Any]) -> float:
    return float(step["bytes"]) / MB / float(step["seconds"])


def report(size: int, repeat: int, local: dict[str, Any], s3: dict[str, Any],
           moto_kib: int | None) -> None:
    print()
    print(f"Object-store benchmark: {os.cpu_count()} CPUs ({platform.machine()}), "
          f"Python {platform.python_version()}, load average "
          f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    print(f"input: {size / MB:.1f} MB of noise; sealed upload {local['sealed_bytes'] / MB:.1f} MB; "
          f"archive {local['archive_bytes'] / MB:.1f} MB; timings: median of {repeat} run(s)")
    print()
    header = (f"{'step':<18}{'local s':>9}{'local MB/s':>12}{'S3 s':>9}{'S3 MB/s':>10}"
              f"{'S3/local':>10}")
    print(header)
    print("-" * len(header))
    for name in STEPS:
        mine, theirs = local["steps"][name], s3["steps"][name]
        print(f"{name:<18}{mine['seconds']:>9.2f}{mb_per_s(mine):>12.1f}"
              f"{theirs['seconds']:>9.2f}{mb_per_s(theirs):>10.1f}"
              f"{mb_per_s(theirs) / mb_per_s(mine):>10.2f}")
    print()
    header = (f"{'peak RSS (VmHWM)':<18}{'local MiB':>11}{'/ input':>9}{'S3 MiB':>9}"
              f"{'/ input':>9}")
    print(header)
    print("-" * len(header))
    print(f"{'after imports':<18}{local['imports_kib'] / 1024:>11.1f}{'':>9}"
          f"{s3['imports_kib'] / 1024:>9.1f}")
    for name in STEPS:
        mine, theirs = local["steps"][name]["peak_kib"], s3["steps"][name]["peak_kib"]
        print(f"{name:<18}{mine / 1024:>11.1f}{mine * 1024 / size:>9.3f}"
              f"{theirs / 1024:>9.1f}{theirs * 1024 / size:>9.3f}")
    if moto_kib is not None:
        print(f"(moto's S3 server process, apart: peak {moto_kib / 1024:.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="upload size (MB)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per step; median")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--role", choices=("main", "worker", "s3"), default="main",
                        help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "s3":
        serve_s3()
        return
    if args.role == "worker":
        size = args.source.stat().st_size
        figures = asyncio.run(measure(args.url, args.source, size, args.work, args.repeat))
        print(json.dumps(figures))
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-objectstore-", dir=args.workdir))
    server = subprocess.Popen([sys.executable, __file__, "--role", "s3"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        moto = json.loads(server.stdout.readline())
        source = work / "upload.bin"
        size = args.size_mb * MB
        print(f"writing {size / MB:.0f} MB of noise to {source} ...", flush=True)
        write_noise(source, size)
        print("local store ...", flush=True)
        local_url = (work / "objects").as_uri()
        local = run_worker(local_url, source, work / "local", args.repeat, {})
        shutil.rmtree(work / "objects")
        print("S3 store (moto on 127.0.0.1) ...", flush=True)
        s3_env = {**moto["env"], "NO_PROXY": "127.0.0.1,localhost"}
        s3 = run_worker(f"s3://{moto['bucket']}/bench", source, work / "s3", args.repeat,
                        s3_env)
        moto_kib = process_high_water_kib(server.pid)
        report(size, args.repeat, local, s3, moto_kib)
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
