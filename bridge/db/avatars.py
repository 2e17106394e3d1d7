"""The room pictures the bot uploaded: one per kind, with the digest of the file uploaded."""

from __future__ import annotations

from mautrix.util.async_db import Database


class RoomAvatars:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> dict[str, tuple[str, str]]:
        """kind → (sha256 of the file, mxc URI)."""
        rows = await self.db.fetch("SELECT kind, sha256, mxc FROM avatar")
        return {row["kind"]: (row["sha256"], row["mxc"]) for row in rows}

    async def put(self, kind: str, sha256: str, mxc: str) -> None:
        await self.db.execute(
            "INSERT INTO avatar (kind, sha256, mxc) VALUES ($1, $2, $3) "
            "ON CONFLICT (kind) DO UPDATE SET sha256 = excluded.sha256, mxc = excluded.mxc",
            kind,
            sha256,
            mxc,
        )
