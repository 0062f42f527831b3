"""Database errors never carry the values bound to the failed statement: they are logged
by the scheduler and the channels, and those values are phone numbers and names. Nor do
the libraries that log what they bind, even with SAFEHAVEN_LOG_LEVEL=DEBUG."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from bot.app.runtime import hold_payload_loggers
from store.db import Database
from store.models import RecipientEntry


async def test_a_failed_statement_s_error_holds_no_bound_values(
        database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(database_url)
    now = datetime(2026, 11, 21, tzinfo=UTC)
    phone, name = "+447911123456", "Priya Shah-Secret"
    row = {"sender_id": "console:alice", "name": name, "job_title": "Lead",
           "organisation": "Trust", "email": "priya@nhs.net", "phone": phone,
           "last_used_at": now}
    async with db.transaction() as s:
        s.add(RecipientEntry(**row))
    hold_payload_loggers()  # as every process does when it configures logging
    with caplog.at_level(logging.DEBUG), pytest.raises(IntegrityError) as raised:
        async with db.transaction() as s:
            s.add(RecipientEntry(**row))  # the same sender, email and phone: not unique
    text = f"{raised.value}\n{raised.value!r}\n{caplog.text}"
    assert phone not in text and name not in text
    assert "hidden due to hide_parameters" in str(raised.value)
    await db.close()
