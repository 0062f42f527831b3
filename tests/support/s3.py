"""An S3 server on 127.0.0.1 for tests: moto's server mode, in a thread of this process.

``with moto_s3() as s3:`` starts it on a free port and yields an :class:`S3Server`; its
``env`` holds the standard ``AWS_*`` variables a Safe Haven process (or
``store.objects.open_object_store``) needs to reach it, so separate replica processes can
share it too. ``s3.bucket()`` makes a fresh, empty bucket. Nothing leaves the loopback
interface; the credentials are moto's dummies.
"""

from __future__ import annotations

import logging
import secrets
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from xml.etree import ElementTree

from moto.server import ThreadedMotoServer

HOST = "127.0.0.1"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
REGION = "eu-west-2"


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        name = name or f"sh-{secrets.token_hex(6)}"
        body = (f'<CreateBucketConfiguration><LocationConstraint>{REGION}'
                '</LocationConstraint></CreateBucketConfiguration>').encode()
        request = urllib.request.Request(f"{self.endpoint}/{name}", data=body, method="PUT")
        with _DIRECT.open(request, timeout=10) as response:
            assert response.status == 200, response.status
        return name

    def pending_uploads(self, bucket: str) -> list[str]:
        """Keys of the multipart uploads begun in ``bucket`` and neither completed nor
        aborted (what an interrupted upload would leave behind)."""
        with _DIRECT.open(f"{self.endpoint}/{bucket}?uploads", timeout=10) as response:
            tree = ElementTree.fromstring(response.read())
        return [element.text or "" for element in tree.iter()
                if element.tag.rsplit("}", 1)[-1] == "Key"]


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    """A running moto S3 server on 127.0.0.1 and a free port, stopped on exit."""
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    requests_log = logging.getLogger("werkzeug")
    level = requests_log.level
    requests_log.setLevel(logging.WARNING)  # not a line per request
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == HOST
        yield S3Server(endpoint=f"http://{HOST}:{port}")
    finally:
        server.stop()
        requests_log.setLevel(level)
