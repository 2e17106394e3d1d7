"""Bridge processes for the benches that run the bridge as an operator does: several
`python -m bridge` processes on one database behind a round-robin balancer, kept running as a
supervisor would, their resident memory and what their /metrics say; and people whose client
rides out a homeserver restart and who click the bot's buttons."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from mautrix.api import Method
from mautrix.errors import MatrixConnectionError, MatrixRequestError
from mautrix.types import RoomID
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos import BOT, PATIENCE_S, Person, WaitedTooLong, reply_target

try:  # psutil when installed; /proc otherwise (Linux)
    import psutil
except ImportError:  # pragma: no cover - depends on the machine
    psutil = None

# How long a process may take to answer /health 200, restarts on the way included.
START_S = 120.0
# A supervisor (systemd's Restart=, a Kubernetes Deployment) starts an exited bridge again
# after this pause: a start refused because the homeserver or the database is away exits.
RESPAWN_PAUSE_S = 1.0


# Memory ----------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    """The process's resident set size, None once it is gone."""
    if psutil is not None:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def mib(n: float | None) -> str:
    return "   —  " if n is None else f"{n / 1048576:6.1f}"


# Metrics ---------------------------------------------------------------------------------------


@dataclass
class Scrape:
    """One process's /metrics: plain samples by (name, labels), histograms' buckets."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """Samples of `name` keyed by one label's value (summed over the other labels)."""
        out: dict[str, float] = {}
        for (sample, labels), value in self.samples.items():
            if sample == name:
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0.0) + value
        return out

    def buckets(self, histogram: str, **labels: str) -> list[tuple[float, float]]:
        """(upper bound, cumulative count) of a histogram with these labels, by bound."""
        found: list[tuple[float, float]] = []
        for (sample, sample_labels), value in self.samples.items():
            if sample != histogram + "_bucket":
                continue
            as_dict = dict(sample_labels)
            if any(as_dict.get(k) != v for k, v in labels.items()):
                continue
            found.append((float(as_dict["le"]), value))
        return sorted(found)


def parse_metrics(text: str) -> Scrape:
    scrape = Scrape()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            scrape.samples[key] = scrape.samples.get(key, 0.0) + float(sample.value)
    return scrape


async def scrape(session: aiohttp.ClientSession, url: str) -> Scrape | None:
    """The process's /metrics, None when it does not answer."""
    try:
        async with session.get(f"{url}/metrics", timeout=aiohttp.ClientTimeout(total=10)) as r:
            if r.status != 200:
                return None
            return parse_metrics(await r.text())
    except (aiohttp.ClientError, TimeoutError):
        return None


def add_buckets(*histograms: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Buckets of the same histogram summed (several processes, or a difference with -1)."""
    total: dict[float, float] = {}
    for buckets in histograms:
        for bound, count in buckets:
            total[bound] = total.get(bound, 0.0) + count
    return sorted(total.items())


def minus(
    later: Sequence[tuple[float, float]], earlier: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """What a histogram counted between two scrapes."""
    before = dict(earlier)
    return [(bound, count - before.get(bound, 0.0)) for bound, count in later]


def quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket the rank falls in."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound  # above the highest finite bucket: its bound, as Prometheus
            width = count - lower_count
            share = 0.0 if width <= 0 else (rank - lower_count) / width
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank: always one of the values measured."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


# The balancer ----------------------------------------------------------------------------------


class Balancer:
    """What stands in front of several bridge processes (a reverse proxy): requests go round
    robin, and to the next process when one does not answer (as in
    tests/integration/test_processes.py)."""

    def __init__(self, port: int, backends: list[str]) -> None:
        self.port = port
        self.backends = backends
        self.turn = itertools.cycle(range(len(backends)))
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None
        self.forwarded = [0] * len(backends)
        self.unanswered = 0  # requests no process answered (502)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self.forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
        if self.session:
            await self.session.close()

    async def forward(self, request: web.Request) -> web.Response:
        assert self.session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        # Each request tries every backend once, from its turn on (another request taking the
        # next turn meanwhile must not make this one try the same backend twice).
        first = next(self.turn)
        for k in range(len(self.backends)):
            index = (first + k) % len(self.backends)
            try:
                async with self.session.request(
                    request.method,
                    self.backends[index] + request.path_qs,
                    headers=headers,
                    data=body,
                ) as resp:
                    kept = {"Content-Type": resp.headers.get("Content-Type", "")}
                    answer = web.Response(status=resp.status, body=await resp.read(), headers=kept)
                self.forwarded[index] += 1
                return answer
            except aiohttp.ClientConnectionError:
                continue
        self.unanswered += 1
        return web.Response(status=502)


def named(stand: Any, prefix: str) -> None:
    """chaos.Stand's work directory under a name of the bench's own (its Synapse in it)."""
    shutil.rmtree(stand.work, ignore_errors=True)
    stand.work = Path(tempfile.mkdtemp(prefix=prefix))
    stand.synapse.directory = stand.work / "synapse"


# Configuration --------------------------------------------------------------------------------


def process_configs(base: Path, ports: Sequence[int]) -> list[Path]:
    """One config per process, each a copy of `base` listening on its own port; everything
    else (database, tokens, the registration's address, the audit key beside it) shared."""
    yaml = YAML()
    paths = []
    for n, port in enumerate(ports):
        data = yaml.load(base.read_text())
        data["appservice"]["port"] = port
        path = base.with_name(f"{base.stem}-{n}.yaml")
        yaml.dump(data, path)
        os.chmod(path, 0o600)
        paths.append(path)
    return paths


# Processes ------------------------------------------------------------------------------------


class ProcessGone(Exception):
    """A bridge process did not come up within START_S, respawns included."""


class BridgeProcess:
    """`python -m bridge -c config.yaml -n` in its own session (a kill takes it all), started
    again as a supervisor would when it exits by itself."""

    def __init__(self, name: str, config_path: Path, url: str, log_path: Path) -> None:
        self.name = name
        self.config_path = config_path
        self.url = url
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.spawns = 0
        self.exits: list[int] = []  # exit codes of exits nobody asked for
        self.expected_down = False
        # One start at a time: the supervisor and a chaos restart both starting a process that
        # exited while starting would leave one of the two spawns running unseen, on the port.
        self._starting = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def mark(self, text: str) -> None:
        """A line in the process's log, so a post-mortem finds the bench's actions."""
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"[{datetime.now().isoformat(sep=' ')}] ----- bench: {text} -----\n")

    def _spawn(self) -> None:
        assert not self.alive(), f"{self.name} is running already"
        self.expected_down = False
        self.spawns += 1
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bridge", "-c", str(self.config_path), "-n"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def start(self, within: float = START_S) -> None:
        """Spawns the process and waits for /health 200; an exit on the way (a start refused
        while the homeserver or the database is away) is followed by another spawn."""
        async with self._starting:
            if self.alive() and not self.expected_down:
                return  # started meanwhile by whoever else was starting it
            await self._start(within)

    async def _start(self, within: float) -> None:
        self.expected_down = False
        deadline = time.monotonic() + within
        self._spawn()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    self.mark(f"exited with {self.process.returncode} while starting; again")
                    await asyncio.sleep(RESPAWN_PAUSE_S)  # a supervisor's pause, not a wait
                    self._spawn()
                elif await self._healthy(session):
                    return
                if time.monotonic() > deadline:
                    raise ProcessGone(f"{self.name} not healthy in {within:.0f} s: {self.tail()}")
                await asyncio.sleep(0.05)

    async def _healthy(self, session: aiohttp.ClientSession) -> bool:
        try:
            async with session.get(f"{self.url}/health") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def kill(self, why: str) -> None:
        """SIGKILL to the whole group: no shutdown code runs, as in a power cut."""
        if self.alive():
            assert self.process is not None
            self.expected_down = True
            self.kills += 1
            self.mark(f"SIGKILL #{self.kills} ({why})")
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.expected_down = True
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def exited_unasked(self) -> int | None:
        """The exit code if the process ended without the bench ending it."""
        if self.process is None or self.expected_down or self._starting.locked():
            return None
        if self.process.poll() is None:
            return None
        return self.process.returncode

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def rss(self) -> int | None:
        return None if not self.alive() or self.pid is None else rss_bytes(self.pid)


class Fleet:
    """Several bridge processes on one database; one config each (process_configs)."""

    def __init__(self, configs: Sequence[Path], ports: Sequence[int], logs_dir: Path) -> None:
        self.processes = [
            BridgeProcess(
                f"bridge-{n}", config, f"http://127.0.0.1:{port}", logs_dir / f"bridge-{n}.log"
            )
            for n, (config, port) in enumerate(zip(configs, ports, strict=True))
        ]
        self._watching: asyncio.Task[None] | None = None

    def __iter__(self) -> Iterator[BridgeProcess]:
        return iter(self.processes)

    def __getitem__(self, n: int) -> BridgeProcess:
        return self.processes[n]

    def __len__(self) -> int:
        return len(self.processes)

    async def start(self) -> None:
        # One after the other: the first makes the audit log's key, the others use it.
        for process in self.processes:
            await process.start()
        self._watching = asyncio.create_task(self._supervise(), name="supervisor")

    async def _supervise(self) -> None:
        """A process that exits by itself is noted and started again, as systemd would."""
        while True:
            await asyncio.sleep(1.0)
            for process in self.processes:
                code = process.exited_unasked()
                if code is not None:
                    process.exits.append(code)
                    process.mark(f"exited by itself with {code}; the supervisor starts it")
                    print(f"  ({process.name} exited by itself with {code})", flush=True)
                    try:
                        await process.start()
                    except ProcessGone as e:
                        print(f"  ({e})", flush=True)

    def stop(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
        for process in self.processes:
            process.stop()

    def rss(self) -> list[int | None]:
        return [p.rss() for p in self.processes]

    async def scrapes(self, session: aiohttp.ClientSession) -> list[Scrape | None]:
        return list(await asyncio.gather(*(scrape(session, p.url) for p in self.processes)))


async def queue_depths(session: aiohttp.ClientSession, urls: Iterable[str]) -> dict[str, float]:
    """`bridge_queue_depth` per queue from the first process that answers (the gauges count the
    shared tables, so any process gives the whole depth); {} when none answers."""
    for url in urls:
        found = await scrape(session, url)
        if found is not None:
            return found.by_label("bridge_queue_depth", "queue")
    return {}


def log_summary(fleet: Fleet) -> None:
    """Warnings and errors in each process's log, by message (ids and numbers masked)."""
    line = re.compile(r"\[(WARNING|ERROR|CRITICAL)@([^\]]+)\] (.*)")
    for process in fleet:
        found: Counter[str] = Counter()
        try:
            text = process.log_path.read_text(errors="replace")
        except OSError:
            continue
        for match in line.finditer(text):
            message = re.sub(r"[!$@#][\w.:=/+-]+", "<id>", match.group(3))
            message = re.sub(r"\d+(\.\d+)?", "N", message)[:150]
            found[f"{match.group(1)} {match.group(2)}: {message}"] += 1
        print(f"{process.name} log: {sum(found.values())} warnings and errors")
        for message, n in found.most_common(10):
            print(f"  {n:>5} × {message}")


def lease_table(rows: Iterable[Any], pids: dict[int, str]) -> str:
    """`name → process` for the lease rows (holder `host:pid:…`), by the bench's names."""
    held = []
    for row in rows:
        pid = int(str(row["holder"]).split(":")[1])
        held.append(f"{row['name']} → {pids.get(pid, f'pid {pid}')}")
    return ", ".join(sorted(held)) or "none"


# People ---------------------------------------------------------------------------------------

CONFIRM = "✅ Да"  # the confirmation button under a decision typed as text


class SteadyPerson(Person):
    """A person whose client rides out a homeserver restart: a send is retried under the same
    transaction id (the homeserver answers a repeat with the first event), an upload and an
    invite's acceptance are tried again. Knows their rooms by (procurement, room key) too."""

    def __init__(self, homeserver: str, user_id: str, token: str, name: str) -> None:
        super().__init__(homeserver, user_id, token, name)
        self.rooms_by_key: dict[tuple[str, str], str] = {}

    def _take(self, room_id: str, room: dict[str, Any]) -> None:
        super()._take(room_id, room)
        for event in [
            *room.get("state", {}).get("events", []),
            *room.get("timeline", {}).get("events", []),
        ]:
            if event.get("type") == "org.procurement.context" and event.get("state_key") == "":
                content = event.get("content") or {}
                key = (str(content.get("procurement_id")), str(content.get("key")))
                self.rooms_by_key[key] = room_id

    async def _retrying(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        deadline = time.monotonic() + PATIENCE_S
        pause = 0.2
        while True:
            try:
                return await call()
            except MatrixRequestError as e:
                if e.http_status < 500 and e.http_status != 429:
                    raise
                error: Exception = e
            except (MatrixConnectionError, aiohttp.ClientError, TimeoutError) as e:
                error = e
            if time.monotonic() > deadline:
                raise WaitedTooLong(f"{self.name} could not {what}: {error!r}")
            await asyncio.sleep(pause)  # a client's backoff, nothing to be woken by
            pause = min(pause * 2, 2.0)

    async def send(self, room_id: str, event_type: str, content: dict[str, Any]) -> str:
        path = f"/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{uuid.uuid4().hex}"

        async def put() -> str:
            resp = await self.client.api.request(Method.PUT, path, content)
            return str(resp["event_id"])

        return str(await self._retrying(f"send {event_type}", put))

    async def post_file(self, room_id: str, filename: str, data: bytes) -> str:
        async def upload() -> str:
            mxc = await self.client.upload_media(
                data, mime_type="application/pdf", filename=filename
            )
            return str(mxc)

        mxc = await self._retrying("upload a file", upload)
        content = {
            "msgtype": "m.file",
            "body": filename,
            "filename": filename,
            "url": mxc,
            "info": {"mimetype": "application/pdf", "size": len(data)},
        }
        return await self.send(room_id, "m.room.message", content)

    async def _accept(self, room_id: str) -> None:
        try:
            await self._retrying(
                f"join {room_id}", lambda: self.client.join_room_by_id(RoomID(room_id))
            )
        except (MatrixRequestError, WaitedTooLong) as e:
            print(f"  ({self.name} could not join {room_id}: {e!r})", flush=True)

    async def react(self, room_id: str, event_id: str, key: str) -> str:
        relation = {"rel_type": "m.annotation", "event_id": event_id, "key": key}
        return await self.send(room_id, "m.reaction", {"m.relates_to": relation})


def _bot_reply_to(person: Person, room_id: str, event_id: str) -> dict[str, Any] | None:
    return next(
        (
            e
            for e in person.timeline.get(room_id, [])
            if e.get("sender") == BOT
            and e.get("type") == "m.room.message"
            and reply_target(e) == event_id
        ),
        None,
    )


def _has_button(person: Person, room_id: str, event_id: str, key: str) -> bool:
    return any(
        e.get("sender") == BOT
        and e.get("type") == "m.reaction"
        and (e.get("content") or {}).get("m.relates_to", {}).get("event_id") == event_id
        and (e.get("content") or {}).get("m.relates_to", {}).get("key") == key
        for e in person.timeline.get(room_id, [])
    )


async def decide_by_click(
    person: SteadyPerson, room_id: str, text: str, sent: list[str] | None = None
) -> str:
    """A decision as a person takes it in the approval's room: types it, waits for the bot's
    «Подтвердите …» and its button, clicks it. Returns the bot's reply's body when it asked
    for no confirmation (a refusal), or "" once clicked. The events sent go to `sent`."""
    sent = [] if sent is None else sent
    asked = await person.say(room_id, text)
    sent.append(asked)
    reply = await person.until(
        lambda: _bot_reply_to(person, room_id, asked), PATIENCE_S, f"the answer to «{text}»"
    )
    body = str((reply.get("content") or {}).get("body", ""))
    if "Подтвердите" not in body:
        return body
    await person.until(
        lambda: _has_button(person, room_id, reply["event_id"], CONFIRM),
        PATIENCE_S,
        f"the button {CONFIRM}",
    )
    sent.append(await person.react(room_id, reply["event_id"], CONFIRM))
    return ""
