"""Create/drop the throwaway PostgreSQL database of a test run (used by scripts/test).

``python -m tests.pgdb create DSN NAME`` exits 1, quickly, when no server answers.
"""

from __future__ import annotations

import asyncio
import re
import sys

import asyncpg


async def _run(action: str, dsn: str, name: str) -> None:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise SystemExit(f"bad database name {name!r}")
    conn = await asyncio.wait_for(asyncpg.connect(dsn), 5)
    try:
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> int:
    action, dsn, name = sys.argv[1:4]
    try:
        asyncio.run(_run(action, dsn, name))
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        print(f"pgdb {action} {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
