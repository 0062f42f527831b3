"""Byte sizes as people read them: ``512 bytes``, ``1.5 MB``."""

from __future__ import annotations


def human_size(size: int) -> str:
    """``size`` bytes in the largest unit (bytes, KB, MB, GB) that keeps it above 1."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


_MB = 1024 * 1024


def size_mb(size: int) -> str:
    """``size`` in megabytes, as file refusals say it: whole from 10 up, else to one
    decimal place without a trailing zero."""
    value = size / _MB
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")
