"""Room pictures by kind (organisation, supplier, commission, …, archive), so a room is known
at a glance in every room list. Each picture is uploaded once and remembered with the digest of
its file; a new file is uploaded again. Until a picture is uploaded its rooms simply keep what
they show: nothing waits for it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from functools import cache
from importlib import resources

from mautrix.client import ClientAPI

from ..db.store import Store
from ..domain.plan import AVATAR_KINDS
from ..feature import Feature
from ..timer import ItemTimer
from ..worker import now_ms
from .media import upload

log = logging.getLogger("bridge.avatars")


@cache
def picture(kind: str) -> tuple[bytes, str]:
    """The PNG shipped for a kind, and its sha256."""
    data = (resources.files("bridge") / "avatars" / f"{kind}.png").read_bytes()
    return data, hashlib.sha256(data).hexdigest()


class Avatars:
    def __init__(self, client: ClientAPI, store: Store) -> None:
        self.client = client
        self.store = store
        self._urls: dict[str, str] | None = None
        self.timer = ItemTimer("avatars", self._missing, self._upload, key=lambda kind: kind)

    def feature(self) -> Feature:
        return Feature(name="avatars", timers=(self.timer,))

    async def urls(self) -> Mapping[str, str]:
        """kind → mxc URI of the pictures uploaded so far."""
        if self._urls is None:
            stored = await self.store.avatars.all()
            self._urls = {
                kind: mxc
                for kind, (sha256, mxc) in stored.items()
                if kind in AVATAR_KINDS and sha256 == picture(kind)[1]
            }
        return self._urls

    async def _missing(self, now: int) -> list[str]:
        urls = await self.urls()
        return [kind for kind in AVATAR_KINDS if kind not in urls]

    async def _upload(self, kind: str) -> None:
        data, sha256 = picture(kind)
        mxc = await upload(self.client, data, "image/png", f"{kind}.png")
        await self.store.avatars.put(kind, sha256, mxc)
        await self.urls()
        assert self._urls is not None
        self._urls[kind] = mxc
        log.info("Room picture %r uploaded as %s", kind, mxc)
        # Rooms already made get it with their next pass.
        await self.store.procurements.request_reconcile_all(now_ms())
