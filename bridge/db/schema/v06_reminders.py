"""Schema v6: timers that read only what is due, however many items are open — when each open
vote or approval next needs its reminders looked at, and the routes with something to post.
Frozen once released: never edit this file, add a new version instead."""

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
    # Settings the stored state was worked out with (the reminder offsets: when they change,
    # every open item is looked at again).
    await conn.execute("CREATE TABLE setting (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # The approvals timer's question, answered from the few routes it is true of.
    await conn.execute(
        "CREATE INDEX approval_to_post ON approval (created_at) WHERE NOT finished AND ("
        "(card_outbox_id IS NULL AND NOT awaiting_document) OR outcome IS NOT NULL)"
    )
