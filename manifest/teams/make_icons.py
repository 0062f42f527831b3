"""Draw the Teams app icons (a white padlock) with the standard library only.

Teams wants ``color.png`` at 192x192 (full colour, the padlock on the accent colour) and
``outline.png`` at 32x32 (white on a transparent background). Run from the repository root
to regenerate them: ``.venv/bin/python manifest/teams/make_icons.py``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

ACCENT = (0x1F, 0x4E, 0x79)  # also the manifest's accentColor
WHITE = (0xFF, 0xFF, 0xFF)
SAMPLES = 4  # supersampling per axis, for smooth edges


def _inside_padlock(x: float, y: float) -> bool:
    """The padlock in unit coordinates (0..1, y down): body, shackle, keyhole cut out."""
    in_body = 0.24 <= x <= 0.76 and 0.44 <= y <= 0.84
    cx, cy = 0.5, 0.44
    r = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
    in_shackle = (0.13 <= r <= 0.20 and y <= cy) or (
        (0.30 <= x <= 0.37 or 0.63 <= x <= 0.70) and cy <= y <= 0.46)
    keyhole = ((x - 0.5) ** 2 + (y - 0.6) ** 2) ** 0.5 <= 0.05 or (
        0.48 <= x <= 0.52 and 0.6 <= y <= 0.73)
    return (in_body and not keyhole) or in_shackle


def _coverage(size: int) -> list[list[float]]:
    rows = []
    for py in range(size):
        row = []
        for px in range(size):
            hits = sum(_inside_padlock((px + (i + 0.5) / SAMPLES) / size,
                                       (py + (j + 0.5) / SAMPLES) / size)
                       for i in range(SAMPLES) for j in range(SAMPLES))
            row.append(hits / SAMPLES ** 2)
        rows.append(row)
    return rows


def png(width: int, height: int, pixels: list[list[tuple[int, int, int, int]]]) -> bytes:
    """An 8-bit RGBA PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def color_icon(size: int = 192) -> bytes:
    def mix(a: int, b: int, t: float) -> int:
        return round(a + (b - a) * t)

    cover = _coverage(size)
    pixels = [[(*(mix(c, w, t) for c, w in zip(ACCENT, WHITE, strict=True)), 255)
               for t in row] for row in cover]
    return png(size, size, pixels)


def outline_icon(size: int = 32) -> bytes:
    cover = _coverage(size)
    return png(size, size, [[(*WHITE, round(255 * t)) for t in row] for row in cover])


def main() -> None:
    here = Path(__file__).resolve().parent
    (here / "color.png").write_bytes(color_icon())
    (here / "outline.png").write_bytes(outline_icon())


if __name__ == "__main__":
    main()
