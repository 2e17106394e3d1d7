"""Schema v6: when each open vote or approval next needs its reminders looked at, so a round of
the reminders timer reads only what is due rather than every open item. Frozen once released:
never edit this file, add a new version instead."""

from __future__ import annotations

from mautrix.util.async_db import Connection, Scheme


async def upgrade(conn: Connection, scheme: Scheme) -> None:
    # 0 (the default): look now. Set after each look to the next reminder window's opening
    # (or an approval's deadline); a decision or an arrived document sets it back to 0.
    for table in ("vote", "approval"):
        await conn.execute(f"ALTER TABLE {table} ADD COLUMN remind_at BIGINT NOT NULL DEFAULT 0")
    await conn.execute("CREATE INDEX vote_reminding ON vote (remind_at) WHERE closed_at IS NULL")
    await conn.execute(
        "CREATE INDEX approval_reminding ON approval (remind_at) WHERE outcome IS NULL"
    )
