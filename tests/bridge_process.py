"""The bridge as an operator runs it: `python -m bridge -c config.yaml`, in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from .waiting import wait_for


class BridgeProcess:
    def __init__(self, config_path: Path, url: str) -> None:
        self.config_path = config_path
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = config_path.with_suffix(".log")

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bridge", "-c", str(self.config_path), "-n"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        await wait_for(self._healthy, timeout=30, interval=0.05, what="the bridge to be healthy")

    async def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"bridge exited with {self.process.returncode}: {self.log()}")
        try:
            async with aiohttp.ClientSession() as session, session.get(f"{self.url}/health") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()  # do not leave it holding the port for the next test
            raise AssertionError(f"the bridge ignored SIGTERM: {self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]
