"""Benchmark: due SMS dispatched from PostgreSQL to a fake Twilio API by worker processes.

Seeds N packaged transfers with one due SMS each into a fresh PostgreSQL database, starts
the fake Twilio REST API (a real local HTTP server) in this process, runs
`safehaven worker --exit-when-idle` with 1 and then 3 processes, and reports password sends per
second (first to last message received by the fake API) and duplicates (must be 0).

    .venv/bin/python bench/deliveries.py [--count 10000] [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.vault import Vault, _decode_key, generate_key  # noqa: E402
from store.db import Database, migrate  # noqa: E402
from store.models import PasswordSend  # noqa: E402
from tests.support.fake_twilio import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeTwilio,
    seed_due_sms,
)


async def _admin(url: str, sql: str) -> None:
    u = make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username,
                                 password=u.password, database=u.database)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def run(pg: str, count: int, workers: int) -> dict[str, float]:
    name = f"sh_bench_{secrets.token_hex(4)}"
    await _admin(pg, f'CREATE DATABASE "{name}"')
    url = make_url(pg).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(migrate, url)
        key = generate_key()
        db = Database(url)
        await seed_due_sms(db, Vault(_decode_key(key)), count=count, now=datetime.now(UTC))
        await db.close()
        fake = await FakeTwilio().start()
        with tempfile.TemporaryDirectory() as var:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
            env.update(SAFEHAVEN_DATABASE_URL=url, SAFEHAVEN_SECRET_KEY=key,
                       SAFEHAVEN_VAR_DIR=var, SAFEHAVEN_SCHEDULER_INTERVAL="0.2",
                       SAFEHAVEN_LOG_LEVEL="WARNING", TWILIO_ACCOUNT_SID=ACCOUNT_SID,
                       TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER="+441632960001",
                       SAFEHAVEN_PUBLIC_URL="https://safehaven.example", TWILIO_API_URL=fake.url)
            started = time.monotonic()
            procs = [await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.app.cli", "worker", "--exit-when-idle", env=env,
                cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
                for _ in range(workers)]
            outs = await asyncio.gather(*(p.communicate() for p in procs))
            wall = time.monotonic() - started
            for p, (_, err) in zip(procs, outs, strict=True):
                if p.returncode:
                    raise SystemExit(err.decode()[-3000:])
        await fake.close()
        db = Database(url)
        async with db.read() as s:
            sent = await s.scalar(select(func.count()).select_from(PasswordSend)
                                  .where(PasswordSend.status == "sent"))
        await db.close()
        span = max(fake.times) - min(fake.times)
        return {"workers": workers, "received": len(fake.messages), "sent_rows": sent or 0,
                "duplicates": fake.duplicates(), "rate": len(fake.messages) / span,
                "wall": wall}
    finally:
        await _admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--pg", default=os.environ.get(
        "SAFEHAVEN_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    print(f"{args.count} due SMS, PostgreSQL, fake Twilio on 127.0.0.1, {os.cpu_count()} cores")
    print(f"{'workers':>7} {'received':>9} {'sent rows':>9} {'duplicates':>10} "
          f"{'deliveries/s':>13} {'wall s':>7}")
    for workers in (1, 3):
        r = await run(args.pg, args.count, workers)
        print(f"{r['workers']:>7} {r['received']:>9} {r['sent_rows']:>9} "
              f"{r['duplicates']:>10} {r['rate']:>13.0f} {r['wall']:>7.1f}")


if __name__ == "__main__":
    asyncio.run(main())
