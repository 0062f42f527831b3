"""The recipient's pages as plain HTML: no JavaScript, no third-party assets, one inline
style sheet allowed by its hash in the Content-Security-Policy.

Every sentence comes from ``bot.messages.portal``; every value is escaped here. The "not
available" page takes no argument that depends on the link, so unknown, expired, revoked
and used-up links get byte-identical answers.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from html import escape

from bot.messages import portal as msg
from bot.sizes import human_size

CSS = """
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
body{margin:0;background:#f3f2f1;color:#0b0c0c;line-height:1.5}
main{max-width:36rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;
border-top:.5rem solid #1d4f91}
.org{margin:0;font-weight:600;color:#1d4f91}
h1{font-size:1.75rem;margin:.25rem 0 1rem}
dl{margin:0 0 1.5rem}
dl div{display:flex;flex-wrap:wrap;border-bottom:1px solid #b1b4b6;padding:.5rem 0}
dt{font-weight:600;min-width:10rem}
dd{margin:0}
button{font:inherit;font-size:1.15rem;font-weight:600;color:#fff;background:#00703c;
border:0;border-bottom:3px solid #002d18;padding:.6rem 1.2rem;cursor:pointer}
button:hover{background:#005a30}
button:focus{outline:3px solid #fd0;outline-offset:0;background:#fd0;color:#0b0c0c}
.note{color:#505a5f;font-size:.95rem}
footer{max-width:36rem;margin:0 auto 2rem;padding:0 2rem;color:#505a5f;font-size:.9rem}
"""

_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")

CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _document(*, title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en-GB">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<main>\n{body}</main>\n<footer><p>{escape(msg.FOOTER)}</p></footer>\n"
        "</body>\n</html>\n"
    )


def download_page(*, organisation: str, reference: str, filename: str, size: int | None,
                  expires: str, expires_at: datetime, remaining: int, limit: int) -> str:
    """The page of a usable link: who shares, the reference, expiry, and the button."""
    file_text = f"{filename} ({human_size(size)})" if size is not None else filename
    rows = "".join(
        f"<div><dt>{escape(label)}</dt><dd>{value}</dd></div>\n"
        for label, value in (
            (msg.PAGE_REFERENCE, escape(reference)),
            (msg.PAGE_FILE, escape(file_text)),
            (msg.PAGE_EXPIRES,
             f'<time datetime="{escape(expires_at.isoformat())}">{escape(expires)}</time>'),
            (msg.PAGE_DOWNLOADS, escape(f"{remaining} of {limit}")),
        ))
    body = (
        f'<p class="org">{escape(organisation)}</p>\n'
        f"<h1>{escape(msg.PAGE_HEADING)}</h1>\n"
        f"<p>{escape(msg.PAGE_INTRO.format(organisation=organisation))}</p>\n"
        f"<dl>\n{rows}</dl>\n"
        '<form method="post">\n'
        f'<button type="submit" aria-describedby="note">{escape(msg.PAGE_BUTTON)}</button>\n'
        "</form>\n"
        f'<p class="note" id="note">{escape(msg.PAGE_BUTTON_NOTE)}</p>\n'
        f"<p>{escape(msg.PAGE_PASSWORD)}</p>\n"
        f"<p>{escape(msg.PAGE_OPENERS)}</p>\n"
        f"<p>{escape(msg.PAGE_DELETE)}</p>\n"
    )
    return _document(title=msg.PAGE_TITLE.format(organisation=organisation), body=body)


def not_found_page(*, organisation: str) -> str:
    """The one answer for every link that cannot be downloaded, whatever the reason."""
    body = (
        f'<p class="org">{escape(organisation)}</p>\n'
        f"<h1>{escape(msg.NOT_FOUND_HEADING)}</h1>\n"
        f"<p>{escape(msg.NOT_FOUND_BODY)}</p>\n"
        f"<p>{escape(msg.NOT_FOUND_NEXT)}</p>\n"
    )
    return _document(title=msg.NOT_FOUND_TITLE, body=body)


def too_many_page(*, organisation: str) -> str:
    body = (
        f'<p class="org">{escape(organisation)}</p>\n'
        f"<h1>{escape(msg.TOO_MANY_HEADING)}</h1>\n"
        f"<p>{escape(msg.TOO_MANY_BODY)}</p>\n"
    )
    return _document(title=msg.TOO_MANY_TITLE, body=body)
