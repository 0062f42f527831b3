"""Near misses are on the record, on the console, Slack and Teams alike: every refused
recipient address or number and every refused file is one ``near_miss`` audit record, with
the reason, the sender and the transfer, and nothing in the audit table says what was
refused (no address, no domain, no number, no file name)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from handlers.services import Services
from store.models import AuditRecord, Transfer
from tests.support.chat import World, reference_in
from tests.support.core import PDF

RECIPIENT = {"name": "Priya Shah", "job_title": "Safeguarding Lead",
             "organisation": "Northfield NHS Trust", "email": "priya.shah@nhs.net",
             "phone": "07911 123456"}
PE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 50 + b"PE\x00\x00"


async def audit_rows(svc: Services) -> list[AuditRecord]:
    async with svc.db.read() as s:
        return list((await s.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())


async def near_misses(svc: Services) -> list[AuditRecord]:
    return [r for r in await audit_rows(svc) if r.action == "near_miss"]


async def whole_record(svc: Services) -> str:
    """Everything the audit table holds but its hashes, as one string to search."""
    return json.dumps([{"reference": r.reference, "actor": r.actor, "action": r.action,
                        "details": r.details} for r in await audit_rows(svc)],
                      ensure_ascii=False).casefold()


async def sender_of(svc: Services, reference: str) -> str:
    async with svc.db.read() as s:
        transfer = await s.get(Transfer, reference)
    assert transfer is not None
    return transfer.sender_id


async def test_each_refused_recipient_is_one_near_miss_without_the_address(
        world: World, tmp_path: Path) -> None:
    alice = await world.sender()
    document = tmp_path / "referral.pdf"
    document.write_bytes(PDF)
    await alice.send_files(document)
    reference = reference_in(alice.text)
    await alice.choose("CONTROLLED")
    if await alice.current_question() != "recipient":  # what kind of information, if asked
        choose_several = getattr(alice, "choose_several", None)
        await (choose_several("Other personal data") if choose_several is not None
               else alice.answer("Other personal data"))
    assert await alice.current_question() == "recipient", alice.text
    refused: list[tuple[dict[str, str], str, str]] = [
        ({"email": "priya.private@gmail.com"}, "email", "webmail"),
        ({"email": "priya.private@gmail.com"}, "email", "webmail"),  # the same, again
        ({"email": "Info@northfield-trust.org.uk"}, "email", "generic mailbox"),
        ({"email": "all-safeguarding@northfield-trust.org.uk"}, "email", "distribution list"),
        ({"email": "priya..shah@@northfield-trust"}, "email", "invalid email address"),
        ({"phone": "0161 496 000"}, "phone", "invalid phone number"),
    ]
    for change, _field, _reason in refused:
        await alice.fill({**RECIPIENT, **change})
        assert await alice.current_question() == "recipient", alice.text
    await alice.fill(RECIPIENT)
    assert await alice.current_question() == "purpose", alice.text

    records = await near_misses(world.svc)
    assert [(r.details["kind"], r.details["field"], r.details["reason"]) for r in records] \
        == [("recipient_refused", field, reason) for _c, field, reason in refused], \
        [dict(r.details) for r in records]
    sender = await sender_of(world.svc, reference)
    assert {(r.actor, r.reference) for r in records} == {(sender, reference)}
    prints = [r.details["fingerprint"] for r in records]
    assert prints[0] == prints[1] and len(set(prints)) == len(prints) - 1  # repeats correlate

    everything = await whole_record(world.svc)
    for change, _field, _reason in refused:
        for value in change.values():
            assert value.casefold() not in everything, value
    for part in ("gmail", "priya.private", "info@", "all-safeguarding", "@@",
                 "northfield-trust.org.uk", "0161 496 000", "0161496000", "+44161496000"):
        assert part.casefold() not in everything, part


async def test_each_refused_file_is_one_near_miss_without_its_name(
        world: World, tmp_path: Path) -> None:
    alice = await world.sender()
    folder = tmp_path / "to-share"
    folder.mkdir()
    disguised = folder / "Julia Smith payroll.pdf"   # a program calling itself a PDF
    disguised.write_bytes(PE)
    program = folder / "Julia Smith helper.exe"      # a blocked kind, honestly named
    program.write_bytes(PE)
    empty = folder / "Julia Smith notes.txt"
    empty.write_bytes(b"")
    good = folder / "referral.pdf"
    good.write_bytes(PDF)
    await alice.send_files(disguised, program, empty, good)
    reference = reference_in(alice.text)
    assert await alice.current_question() == "classification", alice.text

    records = await near_misses(world.svc)
    assert sorted((r.details["kind"], r.details["reason"]) for r in records) == [
        ("file_refused", "blocked kind"), ("file_refused", "disguised"),
        ("file_refused", "empty")]
    sender = await sender_of(world.svc, reference)
    assert {(r.actor, r.reference) for r in records} == {(sender, reference)}
    assert all("fingerprint" not in r.details for r in records)
    everything = await whole_record(world.svc)
    for path in (disguised, program, empty):
        for part in (path.name, path.stem, "julia", "smith", "payroll", "helper.exe"):
            assert part.casefold() not in everything, part


async def test_a_file_over_the_size_limit_is_one_near_miss_wherever_it_is_refused(
        world: World, tmp_path: Path) -> None:
    """Slack and Teams refuse it before fetching it, the console when the turn judges it:
    one record either way, and neither its name nor its content on the record."""
    world.svc.policy = replace(world.svc.policy, max_file_bytes=2000)
    alice = await world.sender()
    big = tmp_path / "Julia Smith full case history.pdf"
    big.write_bytes(PDF + b"%" * 5000)
    good = tmp_path / "referral.pdf"
    good.write_bytes(PDF)
    await alice.send_files(big, good)
    assert "referral.pdf" in alice.text
    (record,) = await near_misses(world.svc)
    assert (record.details["kind"], record.details["reason"]) == ("file_refused", "too large")
    assert record.actor == alice.user_id
    everything = await whole_record(world.svc)
    for part in ("julia", "smith", "case history"):
        assert part not in everything, part
