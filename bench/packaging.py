"""Packaging benchmark: build_archive against 7-Zip, the crypto limit, and peak memory.

    python bench/packaging.py [--workdir DIR] [--big-mb 200] [--rss-mb 1000] [--repeat 1]

Generates a corpus (a scan of noise with a TIFF header, 40 MB of prose and CSV, 50 small
PDFs and images), then measures in one run:

1. ``build_archive`` on the whole corpus (wall time, MB/s of input);
2. ``7z a -tzip -mem=AES256 -p<pw>`` on the same files, default settings, and the ratio;
3. peak RSS of ``build_archive`` in a fresh subprocess on a small and on a ``--rss-mb``
   incompressible input (memory must not grow with file size);
4. raw AES-256-CTR + HMAC-SHA1 (``cryptography``, 1 MiB chunks) over as many bytes as the
   scan, and ``build_archive`` on the scan alone as a fraction of that limit (plus
   pyzipper's stock ``AESZipFile.write`` for comparison). The two are run alternately, so
   that on a shared machine both see the same load; the figure is also given as the median
   of the per-pair ratios.

Every row also gives CPU seconds (all threads of this process, plus 7-Zip's), which the
machine's load affects far less than wall time.

MB means 10**6 bytes. Everything is created under a fresh directory inside ``--workdir``
(default: the system temp dir) and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyzipper  # noqa: E402
from cryptography.hazmat.primitives import hashes, hmac  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from bot.packaging import ArchiveMember, build_archive  # noqa: E402
from bot.passwords import generate_password, load_wordlist  # noqa: E402

MB = 1_000_000
MIB = 1 << 20
TEXT_MB = 40
SMALL_FILES = 50


# --- Corpus -------------------------------------------------------------------------------


def write_random(path: Path, size: int, header: bytes = b"") -> None:
    """``size`` bytes of noise (after ``header``), written in 1 MiB pieces."""
    with path.open("wb") as out:
        out.write(header)
        left = size - len(header)
        while left > 0:
            piece = os.urandom(min(MIB, left))
            out.write(piece)
            left -= len(piece)


def tiff_header() -> bytes:
    """Little-endian TIFF signature and first IFD offset, like a scanner's output."""
    return b"II*\x00" + struct.pack("<I", 8)


def prose(rng: random.Random, words: list[str], size: int) -> bytes:
    """Case-note-like paragraphs: sentences of 6-18 words, a paragraph break now and then."""
    parts: list[str] = []
    total = 0
    while total < size:
        sentence = " ".join(rng.choices(words, k=rng.randint(6, 18))).capitalize() + ". "
        if rng.random() < 0.08:
            sentence += "\n\n"
        parts.append(sentence)
        total += len(sentence)
    return "".join(parts).encode()[:size]


def csv_rows(rng: random.Random, words: list[str], size: int) -> bytes:
    """A register export: ids, dates, codes, a couple of free-text columns."""
    lines = ["case_id,opened,team,status,priority,summary,next_action\n"]
    total = len(lines[0])
    case = 100_000
    while total < size:
        case += 1
        line = (
            f"SH{case},2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
            f"{rng.choice(words)},{rng.choice(('open', 'closed', 'review'))},"
            f"{rng.randint(1, 5)},{' '.join(rng.choices(words, k=8))},"
            f"{' '.join(rng.choices(words, k=4))}\n"
        )
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def pdf_file(rng: random.Random, words: list[str]) -> bytes:
    """A one-page PDF: Flate-compressed text stream plus a DCT (JPEG) image, valid xref."""
    page_text = " ".join(rng.choices(words, k=rng.randint(300, 3000)))
    content = zlib.compress(f"BT /F1 11 Tf 72 720 Td ({page_text}) Tj ET".encode())
    image = os.urandom(rng.randint(20_000, 150_000))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 6 0 R >> /XObject << /Im1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
        + content
        + b"\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width 800 /Height 600 /ColorSpace /DeviceRGB "
        b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n"
        % len(image)
        + image
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def png_file(rng: random.Random) -> bytes:
    """A valid RGB PNG of sensor-noise pixels (so IDAT does not compress, like a photo)."""
    width, height = rng.randint(200, 500), rng.randint(150, 400)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def jpeg_file(rng: random.Random) -> bytes:
    """JPEG-shaped: SOI, JFIF APP0, entropy-coded-looking noise, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + os.urandom(rng.randint(30_000, 400_000)) + b"\xff\xd9"


@dataclass
class Corpus:
    files: list[Path]
    big: Path

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def make_corpus(folder: Path, big_mb: int) -> Corpus:
    rng = random.Random(2024)
    words = list(load_wordlist())
    folder.mkdir()
    big = folder / "scan-0001.tif"
    write_random(big, big_mb * MB, tiff_header())
    files = [big]
    text_parts = [("case-notes-1.txt", 12), ("case-notes-2.txt", 12), ("case-notes-3.txt", 6)]
    for name, megabytes in text_parts:
        (folder / name).write_bytes(prose(rng, words, megabytes * MB))
        files.append(folder / name)
    register = folder / "register-export.csv"
    register.write_bytes(csv_rows(rng, words, (TEXT_MB - 30) * MB))
    files.append(register)
    for number in range(1, SMALL_FILES + 1):
        kind = ("pdf", "png", "jpg")[number % 3]
        path = folder / f"attachment-{number:02d}.{kind}"
        if kind == "pdf":
            path.write_bytes(pdf_file(rng, words))
        elif kind == "png":
            path.write_bytes(png_file(rng))
        else:
            path.write_bytes(jpeg_file(rng))
        files.append(path)
    return Corpus(files=files, big=big)


# --- Measurements -------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    input_bytes: int
    seconds: float
    output_bytes: int | None = None
    cpu_seconds: float | None = None

    @property
    def mb_per_s(self) -> float:
        return self.input_bytes / MB / self.seconds


def cpu_seconds() -> float:
    """CPU time so far of this process (every thread) and of its waited-for children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@dataclass
class Timing:
    seconds: list[float]
    cpu: list[float]
    result: int | None = None


def run_once(action: Callable[[], int | None], out_dir: Path, timing: Timing) -> None:
    """One timed run; ``out_dir`` is emptied afterwards, outside the timing, so no run pays
    for deleting the previous run's archive."""
    cpu = cpu_seconds()
    started = time.perf_counter()
    timing.result = action()
    timing.seconds.append(time.perf_counter() - started)
    timing.cpu.append(cpu_seconds() - cpu)
    for path in out_dir.iterdir():
        path.unlink()


def timed(repeat: int, action: Callable[[], int | None], out_dir: Path) -> Timing:
    timing = Timing([], [])
    for _ in range(repeat):
        run_once(action, out_dir, timing)
    return timing


def timed_alternately(
    repeat: int, first: Callable[[], int | None], second: Callable[[], int | None], out_dir: Path
) -> tuple[Timing, Timing]:
    """``first`` and ``second`` in turn, ``repeat`` times each: both see the same load."""
    one, two = Timing([], []), Timing([], [])
    for _ in range(repeat):
        run_once(first, out_dir, one)
        run_once(second, out_dir, two)
    return one, two


def row(label: str, input_bytes: int, timing: Timing) -> Row:
    return Row(
        label,
        input_bytes,
        statistics.median(timing.seconds),
        timing.result,
        statistics.median(timing.cpu),
    )


def ours(files: list[Path], out_dir: Path, password: str) -> int:
    archive = build_archive(
        reference="SH-BENCH-01",
        members=[ArchiveMember(path, path.name) for path in files],
        password=password,
        out_dir=out_dir,
    )
    return archive.size


def seven_zip(files: list[Path], out_dir: Path, password: str) -> int:
    target = out_dir / "7z-out.zip"
    subprocess.run(
        ["7z", "a", "-tzip", "-mem=AES256", f"-p{password}", str(target), *map(str, files)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return target.stat().st_size


def pyzipper_stock(big: Path, out_dir: Path, password: str) -> int:
    target = out_dir / "stock.zip"
    with pyzipper.AESZipFile(
        target, "w", compression=pyzipper.ZIP_STORED, encryption=pyzipper.WZ_AES
    ) as zf:
        zf.setpassword(password.encode())
        zf.write(big, "document-1.tif")
    return target.stat().st_size


def raw_crypto(total: int) -> None:
    """AES-256-CTR + HMAC-SHA1 over ``total`` bytes in 1 MiB chunks, reused buffers."""
    chunk = os.urandom(MIB)
    out = bytearray(MIB + 15)
    encryptor = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(bytes(16))).encryptor()
    mac = hmac.HMAC(os.urandom(32), hashes.SHA1())
    view = memoryview(out)[:MIB]
    left = total
    while left > 0:
        encryptor.update_into(chunk, out)
        mac.update(view)
        left -= MIB
    mac.finalize()


RSS_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    def high_water_kib():
        # VmHWM: peak RSS of this process image. ru_maxrss would also count the parent's
        # pages at fork time, which are not ours.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    sys.path.insert(0, sys.argv[1])
    from bot.packaging import ArchiveMember, build_archive
    before = high_water_kib()
    started = time.perf_counter()
    archive = build_archive(
        reference="SH-RSS-01",
        members=[ArchiveMember(Path(sys.argv[2]), "scan-big.tif")],
        password=sys.argv[4],
        out_dir=Path(sys.argv[3]),
    )
    seconds = time.perf_counter() - started
    print(json.dumps({"before_kib": before, "peak_kib": high_water_kib(), "seconds": seconds}))
    """
)


def peak_rss(source: Path, out_dir: Path, password: str) -> dict[str, float]:
    """Peak RSS of a fresh interpreter that imports the bot and packages ``source``."""
    result = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(ROOT), str(source), str(out_dir), password],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(result.stdout)
    for archive in out_dir.glob("*.zip"):
        archive.unlink()
    return figures


def seven_zip_version() -> str:
    banner = subprocess.run(["7z"], capture_output=True, text=True, check=False).stdout
    for line in banner.splitlines():
        if line.startswith("p7zip Version"):
            return "p7zip " + line.split()[2]
    return banner.strip().splitlines()[0].split(":")[0] if banner.strip() else "7z"


# --- Main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--big-mb", type=int, default=200, help="size of the scan (MB)")
    parser.add_argument("--rss-mb", type=int, default=1000, help="input for the RSS run (MB)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per timing; median")
    args = parser.parse_args()
    if shutil.which("7z") is None:
        sys.exit("7z not found: apt-get install p7zip-full")

    args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-packaging-", dir=args.workdir))
    password = generate_password()
    load_at_start = os.getloadavg()
    try:
        print(f"generating corpus in {work} ...", flush=True)
        corpus = make_corpus(work / "corpus", args.big_mb)
        out_dir = work / "out"
        out_dir.mkdir()
        total = corpus.size
        big_size = corpus.big.stat().st_size
        small = corpus.files[5:]
        small_size = sum(path.stat().st_size for path in small)

        rows: list[Row] = []
        print("build_archive, whole corpus ...", flush=True)
        timing = timed(args.repeat, lambda: ours(corpus.files, out_dir, password), out_dir)
        ours_all = row("build_archive, whole corpus", total, timing)
        print("7z, whole corpus ...", flush=True)
        timing = timed(args.repeat, lambda: seven_zip(corpus.files, out_dir, password), out_dir)
        seven_all = row("7z a -tzip -mem=AES256, whole corpus", total, timing)
        print("7z, scan only ...", flush=True)
        timing = timed(args.repeat, lambda: seven_zip([corpus.big], out_dir, password), out_dir)
        seven_big = row("7z a -tzip -mem=AES256, scan only", big_size, timing)
        print("pyzipper stock, scan only ...", flush=True)
        timing = timed(args.repeat, lambda: pyzipper_stock(corpus.big, out_dir, password), out_dir)
        stock_big = row("pyzipper AESZipFile.write, scan only", big_size, timing)
        print("build_archive on the scan and raw AES-CTR + HMAC-SHA1, alternately ...", flush=True)
        ours_timing, raw_timing = timed_alternately(
            args.repeat,
            lambda: ours([corpus.big], out_dir, password),
            lambda: raw_crypto(big_size),
            out_dir,
        )
        ours_big = row("build_archive, scan only", big_size, ours_timing)
        raw = row("raw AES-256-CTR + HMAC-SHA1 (cryptography)", big_size, raw_timing)
        pair_fraction = statistics.median(
            limit / mine
            for limit, mine in zip(raw_timing.seconds, ours_timing.seconds, strict=True)
        )
        rows += [ours_all, seven_all, ours_big, seven_big, stock_big, raw]

        shutil.rmtree(work / "corpus")
        print(f"peak RSS, {args.rss_mb} MB input ...", flush=True)
        rss_source = work / "rss-input.tif"
        write_random(rss_source, 10 * MB, tiff_header())
        rss_small = peak_rss(rss_source, out_dir, password)
        write_random(rss_source, args.rss_mb * MB, tiff_header())
        rss_big = peak_rss(rss_source, out_dir, password)

        print()
        print(
            f"Packaging benchmark: {os.cpu_count()} CPUs ({platform.machine()}), "
            f"Python {platform.python_version()}, {seven_zip_version()}"
        )
        print(
            f"corpus: scan-0001.tif {big_size / MB:.1f} MB (noise, TIFF header); "
            f"4 text/CSV files {TEXT_MB} MB; {len(small)} PDFs/PNGs/JPEGs "
            f"{small_size / MB:.1f} MB; total {total / MB:.1f} MB in {len(corpus.files)} files"
        )
        print(f"timings: median of {args.repeat} run(s); CPU s: every thread, and 7-Zip's")
        print(
            "load average (1, 5, 15 min): at start "
            + ", ".join(f"{value:.1f}" for value in load_at_start)
            + "; at end "
            + ", ".join(f"{value:.1f}" for value in os.getloadavg())
        )
        print()
        header = (
            f"{'measurement':<46}{'input MB':>10}{'seconds':>10}{'MB/s':>10}{'output MB':>11}"
            f"{'CPU s':>8}"
        )
        print(header)
        print("-" * len(header))
        for line in rows:
            output = f"{line.output_bytes / MB:.1f}" if line.output_bytes is not None else "-"
            cpu = f"{line.cpu_seconds:.2f}" if line.cpu_seconds is not None else "-"
            print(
                f"{line.label:<46}{line.input_bytes / MB:>10.1f}{line.seconds:>10.2f}"
                f"{line.mb_per_s:>10.1f}{output:>11}{cpu:>8}"
            )
        print()
        ratio = ours_all.mb_per_s / seven_all.mb_per_s
        fraction = ours_big.mb_per_s / raw.mb_per_s
        verdict = "met" if ratio >= 3 else "NOT met"
        print(f"ours / 7z throughput, whole corpus:   {ratio:5.2f}x  (target >= 3x: {verdict})")
        print(
            f"ours / 7z throughput, scan only:      {ours_big.mb_per_s / seven_big.mb_per_s:5.2f}x"
        )
        print(
            f"ours / pyzipper stock, scan only:     {ours_big.mb_per_s / stock_big.mb_per_s:5.2f}x"
        )
        verdict = "met" if fraction >= 0.6 else "NOT met"
        print(f"ours on the scan / raw crypto limit:  {fraction:5.2f}   (target >= 0.6: {verdict})")
        print(f"  the same, median of per-pair ratios: {pair_fraction:5.2f}")
        cpu_fraction = statistics.median(raw_timing.cpu) / statistics.median(ours_timing.cpu)
        print(f"  the same in CPU seconds (raw / ours): {cpu_fraction:5.2f}")
        for label, figures, size_mb in (
            ("peak RSS", rss_small, 10),
            ("peak RSS", rss_big, args.rss_mb),
        ):
            peak_mb = figures["peak_kib"] / 1024
            verdict = "met" if peak_mb < 150 else "NOT met"
            print(
                f"{label}, {size_mb:>5} MB input:        {peak_mb:6.1f} MiB "
                f"(after imports {figures['before_kib'] / 1024:.1f} MiB; "
                f"{size_mb / figures['seconds']:.0f} MB/s; target < 150 MiB: {verdict})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
