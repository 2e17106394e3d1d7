"""An HTTP server of the test's own on the loopback: the procurement system's endpoint, a
witness, a load balancer, a host documents are fetched from."""

from __future__ import annotations

from aiohttp import web

from bridge.localsynapse import free_port


class LocalServer:
    """Subclasses add their routes; `start` listens on `port` (a free one by default)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None
