"""Incidents: mistakes reported on transfers, one per transfer.

Opening one is an insert that does nothing when the transfer already has one, so of two
reports at once (a double press, two replicas) exactly one opens it: the row count says
which. Deciding one is an update of an open incident only, so of two decisions at once
exactly one closes it. Reads return frozen :class:`IncidentRecord`s. The retention sweep
deletes incidents by ``opened_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.statuses import IcoDecision, IncidentStatus
from store.models import Incident


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """An incident as read (the columns of ``incidents``)."""

    id: int
    reference: str
    opened_at: datetime
    reported_by: str
    ico_decision_due: datetime
    status: IncidentStatus
    facts: dict[str, Any]
    decided_at: datetime | None = None
    decided_by: str | None = None
    ico_decision: IcoDecision | None = None
    ico_reference: str | None = None
    decision_reason: str | None = None

    @property
    def decided_late(self) -> bool:
        """Decided after the ICO decision deadline."""
        return self.decided_at is not None and self.decided_at > self.ico_decision_due


def _record(row: Incident) -> IncidentRecord:
    return IncidentRecord(id=row.id, reference=row.reference, opened_at=row.opened_at,
                          reported_by=row.reported_by, ico_decision_due=row.ico_decision_due,
                          status=IncidentStatus(row.status), facts=dict(row.facts or {}),
                          decided_at=row.decided_at, decided_by=row.decided_by,
                          ico_decision=IcoDecision(row.ico_decision) if row.ico_decision
                          else None,
                          ico_reference=row.ico_reference,
                          decision_reason=row.decision_reason)


async def open_incident(session: AsyncSession, *, reference: str, reported_by: str,
                        opened_at: datetime, ico_decision_due: datetime,
                        facts: dict[str, Any]) -> bool:
    """Open the incident of ``reference``; False when it already has one (nothing written)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(Incident).values(reference=reference, reported_by=reported_by,
                                opened_at=opened_at, ico_decision_due=ico_decision_due,
                                status=IncidentStatus.OPEN, facts=facts)
        .on_conflict_do_nothing(index_elements=[Incident.reference]))
    return bool(getattr(result, "rowcount", 0) == 1)


async def decide_incident(session: AsyncSession, *, reference: str, decided_by: str,
                          decided_at: datetime, ico_decision: IcoDecision,
                          ico_reference: str | None, reason: str) -> bool:
    """Record the ICO decision on ``reference``'s open incident and close it; False when it
    has none open (nothing written): already decided, or never reported."""
    result = await session.execute(
        update(Incident)
        .where(Incident.reference == reference, Incident.status == IncidentStatus.OPEN)
        .values(status=IncidentStatus.CLOSED, decided_at=decided_at, decided_by=decided_by,
                ico_decision=ico_decision, ico_reference=ico_reference,
                decision_reason=reason))
    return bool(getattr(result, "rowcount", 0) == 1)


async def incident_for(session: AsyncSession, *, reference: str) -> IncidentRecord | None:
    row = (await session.scalars(
        select(Incident).where(Incident.reference == reference))).first()
    return None if row is None else _record(row)


async def incidents(session: AsyncSession, *, only_open: bool = False
                    ) -> list[IncidentRecord]:
    """Every incident (only the open ones if ``only_open``), oldest first."""
    query = select(Incident).order_by(Incident.opened_at, Incident.id)
    if only_open:
        query = query.where(Incident.status == IncidentStatus.OPEN)
    return [_record(row) for row in (await session.scalars(query)).all()]
