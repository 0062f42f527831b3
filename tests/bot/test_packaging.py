"""Encrypted archives: readable by pyzipper and 7-Zip, names hidden, nothing left half-written."""

from __future__ import annotations

import builtins
import errno
import logging
import os
import random
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
import pyzipper
from Cryptodome.Cipher import AES
from Cryptodome.Util import Counter
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from bot import packaging
from bot.packaging import (
    ArchiveMember,
    PackagedArchive,
    build_archive,
    neutral_name,
    read_index,
)
from bot.winzip_aes import WinZipAesEncrypter

PASSWORD = "Harvest-Cobweb-Tundra-Pocket-Sponge-48265"
SEVEN_ZIP = shutil.which("7z")
needs_7z = pytest.mark.skipif(SEVEN_ZIP is None, reason="7z binary (p7zip-full) not installed")

TEXT_WORDS = "referral visit notes housing assessment review plan school contact".split()


def _text(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(TEXT_WORDS) for _ in range(12)) + ".\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    """Plaintext files: a scan of noise (stored), text (deflated), a small PDF-ish file."""
    folder = tmp_path / "plain"
    folder.mkdir()
    files = {
        # 2.5 MiB: crosses the 1 MiB keystream pages and the 1 MiB read chunks.
        "Julia Smith referral scan.tif": b"II*\x00" + os.urandom(2_600_000),
        "Julia Smith case notes.txt": _text(1_500_000, seed=1),
        "JoanMcMillan.pdf": b"%PDF-1.4\n" + _text(20_000, seed=2) + b"%%EOF\n",
        "empty.txt": b"",
    }
    paths = {}
    for index, (name, data) in enumerate(files.items()):
        path = folder / f"upload-{index}"
        path.write_bytes(data)
        paths[name] = path
    return paths


def _members(sources: dict[str, Path]) -> list[ArchiveMember]:
    return [ArchiveMember(source=path, original_name=name) for name, path in sources.items()]


@pytest.fixture
def archive(tmp_path: Path, sources: dict[str, Path]) -> PackagedArchive:
    return build_archive(
        reference="SH-7K3Q-9F",
        members=_members(sources),
        password=PASSWORD,
        out_dir=tmp_path / "out",
    )


def _zip_contents(path: Path, password: str) -> dict[str, tuple[Any, bytes]]:
    with pyzipper.AESZipFile(path) as zf:
        zf.setpassword(password.encode())
        return {info.filename: (info, zf.read(info)) for info in zf.infolist()}


# --- pyzipper -----------------------------------------------------------------------------


def test_archive_is_named_after_the_reference_and_round_trips(
    archive: PackagedArchive, sources: dict[str, Path], tmp_path: Path
) -> None:
    assert archive.path == tmp_path / "out" / "SH-7K3Q-9F.zip"
    assert archive.size == archive.path.stat().st_size
    assert archive.member_names == (
        "index.txt",
        "document-1.tif",
        "document-2.txt",
        "document-3.pdf",
        "document-4.txt",
    )
    assert archive.index_name == "index.txt"
    contents = _zip_contents(archive.path, PASSWORD)
    assert tuple(contents) == archive.member_names
    for stored, path in zip(archive.member_names[1:], sources.values(), strict=True):
        assert contents[stored][1] == path.read_bytes()
    for info, _ in contents.values():
        assert info.wz_aes_strength == 3  # AES-256
        assert info.wz_aes_version == 2  # AE-2: no CRC
        assert info.CRC == 0


def test_noise_is_stored_and_text_is_deflated(archive: PackagedArchive) -> None:
    contents = _zip_contents(archive.path, PASSWORD)
    assert contents["document-1.tif"][0].compress_type == pyzipper.ZIP_STORED
    assert contents["document-2.txt"][0].compress_type == pyzipper.ZIP_DEFLATED
    assert contents["document-2.txt"][0].compress_size < 1_500_000 // 2


def test_wrong_password_is_refused(archive: PackagedArchive) -> None:
    with pytest.raises(RuntimeError, match="Bad password"):
        _zip_contents(archive.path, "Wrong-Password-22222")


def test_original_names_appear_nowhere_in_the_archive_bytes(
    archive: PackagedArchive, sources: dict[str, Path]
) -> None:
    raw = archive.path.read_bytes()
    for original in sources:
        stem = original.rsplit(".", 1)[0]
        assert stem.encode() not in raw
        assert stem.encode("utf-16-le") not in raw
    assert b"Julia" not in raw and b"McMillan" not in raw
    with pyzipper.AESZipFile(archive.path) as zf:  # central directory, no password needed
        assert zf.namelist() == list(archive.member_names)


def test_index_holds_the_original_names(archive: PackagedArchive, sources: dict[str, Path]) -> None:
    index = read_index(archive.path, PASSWORD)
    assert index == dict(zip(archive.member_names[1:], sources, strict=True))
    header = _zip_contents(archive.path, PASSWORD)["index.txt"][1].decode().splitlines()[0]
    assert header.startswith("#") and "SH-7K3Q-9F" in header


def test_password_is_never_logged(
    tmp_path: Path, sources: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        build_archive(
            reference="SH-LOGS-22",
            members=_members(sources),
            password=PASSWORD,
            out_dir=tmp_path,
        )
    assert caplog.records  # something was logged ...
    assert PASSWORD not in caplog.text  # ... but not the password
    assert "Julia" not in caplog.text  # nor a name that identifies a person


# --- 7-Zip --------------------------------------------------------------------------------


def _7z(*args: str) -> subprocess.CompletedProcess[str]:
    assert SEVEN_ZIP is not None
    return subprocess.run([SEVEN_ZIP, *args], capture_output=True, text=True, check=False)


@needs_7z
def test_7zip_tests_and_extracts_identical_bytes(
    archive: PackagedArchive, sources: dict[str, Path], tmp_path: Path
) -> None:
    tested = _7z("t", f"-p{PASSWORD}", str(archive.path))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    target = tmp_path / "extracted"
    extracted = _7z("x", "-y", f"-p{PASSWORD}", f"-o{target}", str(archive.path))
    assert extracted.returncode == 0, extracted.stdout + extracted.stderr
    for stored, path in zip(archive.member_names[1:], sources.values(), strict=True):
        assert (target / stored).read_bytes() == path.read_bytes()
    assert "Julia Smith case notes.txt" in (target / "index.txt").read_text("utf-8")


@needs_7z
def test_7zip_refuses_a_wrong_password(archive: PackagedArchive) -> None:
    assert _7z("t", "-pWrong-Password-22222", str(archive.path)).returncode != 0


@needs_7z
def test_7zip_lists_every_member_as_aes_256(archive: PackagedArchive) -> None:
    listing = _7z("l", "-slt", str(archive.path))
    assert listing.returncode == 0
    entries = listing.stdout.split("----------", 1)[1].strip().split("\n\n")
    methods = {}
    for entry in entries:
        fields = dict(line.split(" = ", 1) for line in entry.splitlines() if " = " in line)
        methods[fields["Path"]] = fields["Method"]
    assert set(methods) == set(archive.member_names)
    assert all("AES-256" in method for method in methods.values()), methods
    assert "Store" in methods["document-1.tif"]
    assert "Deflate" in methods["document-2.txt"]


# --- Names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "original", "expected"),
    [
        (1, "Julia Smith referral.pdf", "document-1.pdf"),
        (2, "SCAN.TIF", "document-2.tif"),
        (3, "backup.tar.gz", "document-3.gz"),
        (4, "no extension", "document-4"),
        (5, ".bashrc", "document-5"),
        (6, "file.averylongext", "document-6"),
        (7, "file.pd f", "document-7"),
        (8, "file.pdf\u202e", "document-8"),
        (9, "../../etc/passwd", "document-9"),
        (10, "C:\\Users\\Julia\\letter.DOCX ", "document-10.docx"),
        (11, "résumé.ñx", "document-11"),
    ],
)
def test_neutral_name(position: int, original: str, expected: str) -> None:
    assert neutral_name(position, original) == expected


def test_neutral_name_positions_start_at_one() -> None:
    with pytest.raises(ValueError):
        neutral_name(0, "a.pdf")


def test_original_names_are_sanitised_when_kept(tmp_path: Path) -> None:
    source = tmp_path / "plain"
    source.write_bytes(b"hello\n")
    originals = [
        "../../etc/passwd",
        "..\\..\\Windows\\win.ini",
        "/absolute/path/report.pdf",
        "report.pdf",  # duplicate of the previous one once the folder is gone
        "invoice\u202efdp.exe",  # right-to-left override disguising the extension
        "tab\there\nnewline.txt",
        'what?*:<>|".txt',
        "CON.txt",
        "index.txt",  # would clash with the index member
        "..",
        "Réunion notes ✓.txt",
    ]
    archive = build_archive(
        reference="SH-NAME-22",
        members=[ArchiveMember(source, name) for name in originals],
        password=PASSWORD,
        out_dir=tmp_path / "out",
        neutral_names=False,
    )
    assert archive.member_names == (
        "index.txt",
        "passwd",
        "win.ini",
        "report.pdf",
        "report (2).pdf",
        "invoicefdp.exe",
        "tabherenewline.txt",
        "what_______.txt",
        "_CON.txt",
        "index (2).txt",
        "document-10",
        "Réunion notes ✓.txt",
    )
    contents = _zip_contents(archive.path, PASSWORD)
    assert tuple(contents) == archive.member_names
    for name in contents:
        assert "/" not in name and "\\" not in name and not name.startswith(".")
    index = read_index(archive.path, PASSWORD)
    assert index["passwd"] == "../../etc/passwd"
    assert index["tabherenewline.txt"] == "tab\ufffdhere\ufffdnewline.txt"


@needs_7z
def test_7zip_extracts_sanitised_names_inside_the_target(tmp_path: Path) -> None:
    source = tmp_path / "plain"
    source.write_bytes(b"hello\n")
    archive = build_archive(
        reference="SH-TRAV-22",
        members=[ArchiveMember(source, "../../etc/passwd")],
        password=PASSWORD,
        out_dir=tmp_path / "out",
        neutral_names=False,
    )
    target = tmp_path / "target"
    assert _7z("x", "-y", f"-p{PASSWORD}", f"-o{target}", str(archive.path)).returncode == 0
    assert sorted(p.name for p in target.iterdir()) == ["index.txt", "passwd"]
    assert (target / "passwd").read_bytes() == b"hello\n"


# --- Failures -----------------------------------------------------------------------------


def test_missing_source_leaves_no_partial_file(tmp_path: Path, sources: dict[str, Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "SH-FAIL-22.zip").write_bytes(b"previous archive")
    members = [*_members(sources)[:2], ArchiveMember(tmp_path / "gone", "gone.pdf")]
    with pytest.raises(FileNotFoundError):
        build_archive(reference="SH-FAIL-22", members=members, password=PASSWORD, out_dir=out)
    assert [p.name for p in out.iterdir()] == ["SH-FAIL-22.zip"]
    assert (out / "SH-FAIL-22.zip").read_bytes() == b"previous archive"


def test_source_failing_mid_read_leaves_no_partial_file(
    tmp_path: Path, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file disappears (e.g. its volume goes away) after the first chunk was written."""
    real_open = builtins.open

    class Vanishing:
        def __init__(self, raw: Any) -> None:
            self._raw = raw
            self._reads = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self._raw, name)

        def __enter__(self) -> Vanishing:
            return self

        def __exit__(self, *exc: object) -> None:
            self._raw.close()

        def readinto(self, buffer: Any) -> int:
            self._reads += 1
            if self._reads > 1:
                raise OSError("Stale file handle")
            count: int = self._raw.readinto(buffer)
            return count

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        return Vanishing(handle) if mode == "rb" else handle

    monkeypatch.setattr(packaging, "open", fake_open, raising=False)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="Stale file handle"):
        build_archive(
            reference="SH-FAIL-33", members=_members(sources), password=PASSWORD, out_dir=out
        )
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("reference", ["", "../x", "a/b", ".hidden", "x" * 65, "SH 1"])
def test_unsafe_references_are_refused(tmp_path: Path, reference: str) -> None:
    source = tmp_path / "plain"
    source.write_bytes(b"x")
    with pytest.raises(ValueError):
        build_archive(
            reference=reference,
            members=[ArchiveMember(source, "a.txt")],
            password=PASSWORD,
            out_dir=tmp_path,
        )


def test_no_members_or_no_password_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "plain"
    source.write_bytes(b"x")
    with pytest.raises(ValueError):
        build_archive(reference="SH-A", members=[], password=PASSWORD, out_dir=tmp_path)
    with pytest.raises(ValueError):
        build_archive(
            reference="SH-A", members=[ArchiveMember(source, "a")], password="", out_dir=tmp_path
        )


# --- The fast AES path --------------------------------------------------------------------


def test_fast_encrypter_matches_the_reference_winzip_ctr() -> None:
    """Same ciphertext as pycryptodome's little-endian CTR (what pyzipper uses), in pieces
    of awkward sizes that straddle the 1 MiB keystream pages."""
    encrypter = WinZipAesEncrypter(b"secret")
    salt = encrypter.encryption_header()[:16]
    keys = PBKDF2HMAC(algorithm=hashes.SHA1(), length=66, salt=salt, iterations=1000).derive(
        b"secret"
    )
    assert encrypter.encryption_header()[16:] == keys[64:]
    reference = AES.new(keys[:32], AES.MODE_CTR, counter=Counter.new(128, little_endian=True))
    rng = random.Random(7)
    sizes = [0, 1, 15, 16, 17, 1 << 20, (1 << 20) + 5, 3, 65_537, 2_000_000]
    sizes += [rng.randint(1, 300_000) for _ in range(10)]
    for size in sizes:
        data = rng.randbytes(size)
        assert bytes(encrypter.encrypt(data)) == reference.encrypt(data), size


@pytest.mark.parametrize(
    ("original", "expected_end"),
    [("報告" * 150 + ".pdf", ".pdf"), ("a" * 300, "a"), ("b" * 250 + ".averylongextension", "b")],
)
def test_long_kept_names_fit_file_systems(original: str, expected_end: str) -> None:
    name = packaging.sanitise_name(original, 1)
    assert len(name.encode()) <= 200
    assert name.endswith(expected_end)
    assert original.startswith(name.removesuffix(".pdf"))


@pytest.mark.parametrize("page", [255, 65535])
def test_fast_encrypter_counters_across_far_keystream_pages(page: int) -> None:
    """Past 256 MiB (and 64 GiB) of a member, higher counter bytes change. Jump the
    encrypter there (writing that much would take minutes) and compare with pycryptodome's
    little-endian CTR started at the same counter, across the page boundary."""
    encrypter = WinZipAesEncrypter(b"secret")
    salt = encrypter.encryption_header()[:16]
    keys = PBKDF2HMAC(algorithm=hashes.SHA1(), length=66, salt=salt, iterations=1000).derive(
        b"secret"
    )
    first_block = page * 65536 + 65_000
    encrypter._position = first_block * 16
    reference = AES.new(
        keys[:32],
        AES.MODE_CTR,
        counter=Counter.new(128, initial_value=first_block, little_endian=True),
    )
    data = random.Random(page).randbytes(3 << 20)
    for piece in (data[:5], data[5 : 1 << 20], data[1 << 20 :]):
        assert bytes(encrypter.encrypt(piece)) == reference.encrypt(piece)


# --- The parallel path: several members, pieces deflated on the pool, HMAC on a thread ----


def _local_data_offset(path: Path, info: Any) -> int:
    """Where a member's encrypted data starts: after its local header and the AES salt and
    password verifier (18 bytes for AES-256)."""
    with path.open("rb") as raw:
        raw.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", raw.read(4))
    offset: int = info.header_offset + 30 + name_length + extra_length + 18
    return offset


@pytest.fixture
def multi_member_archive(tmp_path: Path) -> tuple[PackagedArchive, dict[str, bytes]]:
    """Members of several MiB: text deflated in more pieces than the pool keeps in flight,
    noise stored (hashed and written on the encrypter's thread), and a tiny member."""
    folder = tmp_path / "plain"
    folder.mkdir()
    files = {
        "notes-a.txt": _text(6_000_000, seed=3),
        "register.csv": _text(3_500_000, seed=4),
        "scan-a.tif": b"II*\x00" + os.urandom(3_000_000),
        "photo.jpg": os.urandom(1_200_000),
        "small.txt": b"hello\n",
    }
    members = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        members.append(ArchiveMember(folder / name, name))
    archive = build_archive(
        reference="SH-MULTI-01",
        members=members,
        password=PASSWORD,
        out_dir=tmp_path / "out",
        neutral_names=False,
    )
    return archive, files


def test_parallel_path_output_is_standard_ae2(
    multi_member_archive: tuple[PackagedArchive, dict[str, bytes]],
) -> None:
    archive, files = multi_member_archive
    contents = _zip_contents(archive.path, PASSWORD)
    assert list(contents) == ["index.txt", *files]
    for name, data in files.items():
        info, content = contents[name]
        assert content == data, name
        assert (info.wz_aes_strength, info.wz_aes_version, info.CRC) == (3, 2, 0)
    assert contents["notes-a.txt"][0].compress_type == pyzipper.ZIP_DEFLATED
    assert contents["notes-a.txt"][0].compress_size < len(files["notes-a.txt"]) // 2
    assert contents["scan-a.tif"][0].compress_type == pyzipper.ZIP_STORED
    with pytest.raises(RuntimeError, match="Bad password"):
        _zip_contents(archive.path, "Wrong-Password-22222")


@needs_7z
def test_parallel_path_output_passes_7zip(
    multi_member_archive: tuple[PackagedArchive, dict[str, bytes]], tmp_path: Path
) -> None:
    archive, files = multi_member_archive
    tested = _7z("t", f"-p{PASSWORD}", str(archive.path))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    target = tmp_path / "extracted"
    assert _7z("x", "-y", f"-p{PASSWORD}", f"-o{target}", str(archive.path)).returncode == 0
    for name, data in files.items():
        assert (target / name).read_bytes() == data, name
    assert _7z("t", "-pWrong-Password-22222", str(archive.path)).returncode != 0


@pytest.mark.parametrize("member", ["scan-a.tif", "notes-a.txt"])
def test_a_changed_byte_fails_the_hmac(
    multi_member_archive: tuple[PackagedArchive, dict[str, bytes]], member: str
) -> None:
    """One flipped ciphertext byte in the middle of a member: pyzipper and 7-Zip refuse."""
    archive, _ = multi_member_archive
    info = _zip_contents(archive.path, PASSWORD)[member][0]
    position = _local_data_offset(archive.path, info) + info.compress_size // 2
    raw = bytearray(archive.path.read_bytes())
    raw[position] ^= 0x01
    archive.path.write_bytes(raw)
    with pyzipper.AESZipFile(archive.path) as zf:
        zf.setpassword(PASSWORD.encode())
        with pytest.raises((pyzipper.BadZipFile, zlib.error)) as refused:
            zf.read(member)
    if member == "scan-a.tif":  # stored: nothing but the HMAC can notice
        assert "Bad HMAC check" in str(refused.value)
    if SEVEN_ZIP is not None:
        assert _7z("t", f"-p{PASSWORD}", str(archive.path)).returncode != 0


# --- Durability ---------------------------------------------------------------------------


def test_archive_is_fsynced_before_it_is_renamed_into_place(
    tmp_path: Path, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(f"fsync {os.fstat(fd).st_size}")
        real_fsync(fd)

    def replace(source: Any, target: Any) -> None:
        events.append("replace")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    archive = build_archive(
        reference="SH-SYNC-01", members=_members(sources), password=PASSWORD, out_dir=tmp_path
    )
    assert events == [f"fsync {archive.size}", "replace"]


def test_a_failed_background_flush_fails_the_archive(
    tmp_path: Path, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error the background fdatasync saw may never reach the final fsync (the kernel
    reports it once): it must still fail the archive, and leave nothing behind."""

    def fdatasync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(packaging, "SYNC_STEP", 1 << 20)
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="Input/output error"):
        build_archive(
            reference="SH-SYNC-02", members=_members(sources), password=PASSWORD, out_dir=out
        )
    assert list(out.iterdir()) == []
