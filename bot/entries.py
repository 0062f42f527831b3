"""The shapes of a conversation's answers: a received file, the recipient, the consent limits.

They are ``TypedDict``s, so the state keeps the plain JSON objects it always stored (saved
state reads back unchanged) while the code that reads them is checked by key.
"""

from __future__ import annotations

from typing import TypedDict


class FileEntry(TypedDict):
    """One accepted upload (``State.files``)."""

    name: str
    path: str  # the sealed upload's object key (uploads/...), until packaged or deleted
    size: int
    kind: str  # the described file type, e.g. "PDF document"
    flags: list[str]  # why the name looks identifying (empty when it does not)
    position: int  # 1-based, the order the files arrived in


class Recipient(TypedDict, total=False):
    """The checked recipient (``State.recipient``, ``transfers.recipient``)."""

    name: str
    job_title: str
    department: str  # optional: "" when left empty (absent in answers saved before it)
    organisation: str
    email: str
    email_domain: str  # the ASCII (IDNA 2008) domain agreements are matched against
    phone: str  # E.164
    extension: str | None
    phone_display: str
    is_mobile: bool


class Consent(TypedDict, total=False):
    """What the recipient may do with the files (``State.consent``); while the form has
    errors only ``draft``, the values as typed, is kept."""

    use_limits: str
    onward_sharing: bool
    delete_after_use: bool
    draft: dict[str, str]
