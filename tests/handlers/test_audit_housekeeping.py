"""The scheduler's pass keeps the audit trail: it writes a signed checkpoint when one is due
and prunes records older than the policy's ``[retention] audit_days`` behind one, and the
trail still verifies; a process without a trail attached does neither."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from handlers import housekeeping
from handlers.services import Services
from store import audit
from store.audit_anchor import open_anchor
from store.models import AuditRecord
from tests.support.core import Clock


async def _records(svc: Services) -> tuple[int, int]:
    async with svc.db.read() as s:
        row = (await s.execute(select(func.min(AuditRecord.seq),
                                      func.count(AuditRecord.seq)))).one()
    return int(row[0] or 0), int(row[1])


async def test_the_pass_checkpoints_and_prunes_by_the_policy(services: Services,
                                                             clock: Clock) -> None:
    svc = replace(services, policy=replace(
        services.policy, retention=replace(services.policy.retention, audit_days=30)))
    trail = audit.trail_from_settings(svc.settings, vault=svc.vault, objects=svc.objects)
    audit.attach(svc.db, trail)
    start = clock()
    for day in range(40):
        async with svc.db.transaction() as s:
            await audit.append(s, at=start + timedelta(days=day), actor="console:alice",
                               action="answered", reference="SH-AAAA-22", details={"d": day})
    clock.now = start + timedelta(days=40)
    await housekeeping.tick(svc)
    first, count = await _records(svc)
    # Records from days 0-9 are older than 30 days: gone; the pruning is itself recorded.
    assert first == 11 and count == 31
    found = await trail.checkpoints()
    assert found and all(c is not None for c in found)
    async with svc.db.read() as s:
        result = await audit.verify(s, keys=trail.keys, checkpoints=found)
    assert result.ok, result.message()
    assert result.checkpoint is not None and result.checkpoint.base_seq == 10
    anchor = open_anchor(svc.settings.audit_anchor_spec, objects=svc.objects)
    assert len(await anchor.read()) == len(found)  # the default anchor, under the var dir
    assert str(svc.settings.var_dir.resolve()) in svc.settings.audit_anchor_spec


async def test_without_a_trail_the_pass_leaves_the_audit_alone(services: Services,
                                                               clock: Clock) -> None:
    async with services.db.transaction() as s:
        await audit.append(s, at=clock() - timedelta(days=4000), actor="safehaven",
                           action="packaged")
    await housekeeping.tick(services)
    assert await _records(services) == (1, 1)
    assert await open_anchor(services.settings.audit_anchor_spec,
                             objects=services.objects).read() == []
