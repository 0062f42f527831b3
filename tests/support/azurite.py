"""Azurite, Microsoft's Azure Storage emulator, on 127.0.0.1 for tests, when installed.

Azurite is a Node program (``npm install azurite``), not a Python package, so the tests that
need it skip unless ``azurite-blob`` is found: named by ``AZURITE_BLOB``, in ``.tools/`` (where
``scripts/setup`` installs it), or on ``PATH``.
``with azurite() as az:`` starts it on a free port, in memory, with telemetry off (it would
otherwise report to Microsoft), and yields an :class:`Azurite` whose ``env`` holds the
``AZURE_STORAGE_*`` variables for ``az://`` URLs; ``az.container()`` makes a fresh one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

HOST = "127.0.0.1"
# The emulator's well-known development account (published by Microsoft; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")
_VERSION = "2021-08-06"
_TYPE = "application/octet-stream"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy


def azurite_command() -> str | None:
    """The ``azurite-blob`` program, or None when it is not installed."""
    local = Path(__file__).resolve().parents[2] / ".tools/node_modules/.bin/azurite-blob"
    return (os.environ.get("AZURITE_BLOB") or (str(local) if local.is_file() else None)
            or shutil.which("azurite-blob"))


@dataclass(frozen=True)
class Azurite:
    endpoint: str  # http://127.0.0.1:<port>/devstoreaccount1

    @property
    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": ACCOUNT_KEY,
                "AZURE_STORAGE_ENDPOINT": self.endpoint}

    def container(self) -> str:
        """Create a container with a fresh random name (signed with the account key, as
        Azure's Shared Key scheme says) and return its name."""
        name = f"sh-{secrets.token_hex(6)}"
        date = formatdate(usegmt=True)
        fields = ["PUT", "", "", "", "", _TYPE, "", "", "", "", "", ""]  # verb .. Range
        canonical = "\n".join([*fields, f"x-ms-date:{date}", f"x-ms-version:{_VERSION}",
                                f"/{ACCOUNT}/{ACCOUNT}/{name}", "restype:container"])
        signature = base64.b64encode(hmac.new(base64.b64decode(ACCOUNT_KEY),
                                              canonical.encode(), hashlib.sha256).digest())
        request = urllib.request.Request(
            f"{self.endpoint}/{name}?restype=container", method="PUT", data=b"",
            headers={"Content-Type": _TYPE, "x-ms-date": date, "x-ms-version": _VERSION,
                     "Authorization": f"SharedKey {ACCOUNT}:{signature.decode()}"})
        with _DIRECT.open(request, timeout=10) as response:
            assert response.status == 201, response.status
        return name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def azurite() -> Iterator[Azurite]:
    """A running Azurite blob service on 127.0.0.1, stopped on exit (the caller checks
    :func:`azurite_command` first and skips when it is None)."""
    command = azurite_command()
    assert command, "azurite-blob is not installed"
    port = _free_port()
    process = subprocess.Popen(
        [command, "--blobHost", HOST, "--blobPort", str(port), "--inMemoryPersistence",
         "--disableTelemetry", "--skipApiVersionCheck", "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Azurite did not start") from None
                time.sleep(0.2)
        yield Azurite(endpoint=f"http://{HOST}:{port}/{ACCOUNT}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
