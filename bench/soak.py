"""Soak: two bridge processes on one PostgreSQL behind a balancer under steady load from the
procurement system and from people in Matrix, for minutes; throughput, latency and each
process's memory over time.

    .venv/bin/python bench/soak.py --minutes N [--procurements 2] [--rate 1.0]
                                   [--warmup-minutes W] [--processes 2]

Run by hand. One throwaway Synapse, one fresh PostgreSQL database, a callback endpoint standing
in for the procurement system, and `--processes` bridges (`python -m bridge`, as an operator
runs them) behind a round-robin balancer at the address Synapse and the ERP use, as in
tests/integration/test_processes.py. The procurements are in stage `commission`: a manager, a
commission of three (the same people in every procurement), two suppliers with one member each.
Everyone is a person syncing as Element does (chaos.py's, whose client rides out hiccups).

The load, each stream on its own clock (`--rate` scales every one):

* the ERP: a snapshot again every 15 s (a new version; every other one adds a team member,
  the next takes them out), a notice every 5 s, a document every 10 s (4 KiB, inline), a vote
  every 30 s (the three commission members answer the poll once it shows), an approval every
  60 s (two approvers type «согласовать» and click «✅ Да» under the bot's confirmation);
* people: suppliers' members write in their chats and the manager answers (2 messages/s in
  all); the manager asks «помощь» in an organisation chat every 10 s.

Measured after the warm-up (the first `--warmup-minutes`, 10 % of the run by default, at least
one minute):

* throughput: items each queue processed per second, both processes together, and each
  process's share;
* queue latency p50/p99 from the processes' `bridge_processing_latency_seconds` histograms
  (arrival to processed, per queue; the bridge has no `bridge_queue_latency_seconds`), the
  buckets' counts of the measured window summed over the processes and interpolated as
  Prometheus' histogram_quantile does;
* latency as people see it, timed from the outside: a notice, a document and a poll from the
  ERP's 202 to the person's sync, the reply to «помощь» from the message's send, a vote's
  `vote.completed` from the last answer, an approval's `approval.completed` from the last
  click;
* each process's resident memory, sampled every 10 s: a line a minute, then after warm-up, at
  the end, the peak and the growth (target < 10 % over 30 minutes).

It also prints the leases' holders, the balancer's split, callbacks, dead letters, exits
nobody asked for, and the warnings and errors in each process's log, by message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import random
import shutil
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos import (
    BOT,
    ERP,
    POLL_RESPONSE,
    CallbackDesk,
    Stand,
    WaitedTooLong,
    content_of,
    is_poll_start,
    poll_question,
    reply_target,
)
from fleet import (
    Balancer,
    Fleet,
    Scrape,
    SteadyPerson,
    add_buckets,
    decide_by_click,
    lease_table,
    log_summary,
    mib,
    minus,
    named,
    percentile,
    process_configs,
    quantile,
)

from bridge.demo.seed import seed_vote
from bridge.localsynapse import free_port

HELP, APPROVE = "помощь", "согласовать"
SAMPLE_S = 10.0
LATENCY = "bridge_processing_latency_seconds"


@dataclass
class Cast:
    manager: SteadyPerson
    commission: list[SteadyPerson]
    suppliers: dict[str, list[tuple[str, SteadyPerson]]]  # procurement → (supplier id, member)
    team: str  # a team member invited and taken out by the snapshots (not syncing)

    @property
    def everyone(self) -> list[SteadyPerson]:
        members = [m for pairs in self.suppliers.values() for _, m in pairs]
        return [self.manager, *self.commission, *members]


def snapshot(cast: Cast, pid: str, version: int) -> dict[str, Any]:
    return {
        "id": pid,
        "version": version,
        "number": pid,
        "title": f"Поставка арматуры А500С, лот {pid}",
        "url": f"https://erp.example/procurements/{pid}",
        "stage": "commission",
        "manager": cast.manager.user_id,
        "team": [cast.team] if version % 2 == 0 else [],
        "suppliers": [
            {"id": sid, "name": f"ООО «Поставщик {sid}»", "members": [member.user_id]}
            for sid, member in cast.suppliers[pid]
        ],
        "commission": {
            "id": "15000.16969",
            "name": "Комиссия № 15000.16969 от 30.11.2022",
            "chair": cast.commission[0].user_id,
            "members": [p.user_id for p in cast.commission],
        },
    }


# What is measured ------------------------------------------------------------------------------


@dataclass
class Seen:
    """Latencies as people see them, by kind, with when each was taken (monotonic)."""

    samples: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    gave_up: Counter[str] = field(default_factory=Counter)
    done: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, seconds: float) -> None:
        self.samples[kind].append((time.monotonic(), seconds))
        self.done[kind] += 1

    def after(self, since: float) -> dict[str, list[float]]:
        return {k: [s for at, s in v if at >= since] for k, v in self.samples.items()}


@dataclass
class Sample:
    at: float  # monotonic
    rss: list[int | None]
    scrapes: list[Scrape | None]


# The load --------------------------------------------------------------------------------------


class Load:
    def __init__(self, cast: Cast, erp: ERP, desk: CallbackDesk, pids: list[str], rate: float):
        self.cast = cast
        self.erp = erp
        self.desk = desk
        self.pids = pids
        self.rate = rate
        self.seen = Seen()
        self.rng = random.Random(7)
        self.versions = dict.fromkeys(pids, 1)
        self.stop_at = 0.0
        self.tasks: set[asyncio.Task[None]] = set()
        self.n = 0

    def every(self, seconds: float) -> float:
        return seconds / self.rate

    def spawn(self, kind: str, action: Awaitable[None]) -> None:
        """One item of a stream, on its own: a slow one never holds the stream back."""

        async def guarded() -> None:
            try:
                await action
            except WaitedTooLong as e:
                self.seen.gave_up[kind] += 1
                print(f"  ({kind}: {e})", flush=True)
            except Exception as e:
                self.seen.gave_up[kind] += 1
                print(f"  ({kind} failed: {e!r})", flush=True)

        task = asyncio.create_task(guarded(), name=kind)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stream(self, kind: str, period: float, make: Callable[[], Awaitable[None]]) -> None:
        # Streams start spread over their period, so they do not beat in step.
        await asyncio.sleep(self.rng.uniform(0, period))
        while time.monotonic() < self.stop_at:
            self.spawn(kind, make())
            await asyncio.sleep(period)  # the stream's clock

    def streams(self) -> list[Awaitable[None]]:
        return [
            self.stream("snapshot", self.every(15), self.upsert),
            self.stream("notice", self.every(5), self.notice),
            self.stream("document", self.every(10), self.document),
            self.stream("vote", self.every(30), self.vote),
            self.stream("approval", self.every(60), self.approval),
            self.stream("chat", self.every(0.5), self.chat),
            self.stream("help", self.every(10), self.help),
        ]

    def next_id(self) -> int:
        self.n += 1
        return self.n

    def pid(self) -> str:
        return self.rng.choice(self.pids)

    # The ERP -------------------------------------------------------------------------------

    async def upsert(self) -> None:
        pid = self.pid()
        self.versions[pid] += 1
        await self.erp.send("procurement.upserted", snapshot(self.cast, pid, self.versions[pid]))

    async def notice(self) -> None:
        pid, n = self.pid(), self.next_id()
        text = f"Уведомление № {n}: сроки подачи продлены · {uuid.uuid4().hex[:8]}"
        manager = self.cast.manager
        org = self.room(manager, pid, "org")
        start = time.monotonic()
        await self.erp.send(
            "notice.posted", {"procurement_id": pid, "room": "org", "markdown": text}
        )
        await manager.until(
            lambda: any(content_of(e).get("body") == text for e in manager.timeline.get(org, [])),
            300,
            f"notice {n}",
        )
        self.seen.add("notice (202 → seen)", time.monotonic() - start)

    async def document(self) -> None:
        pid, n = self.pid(), self.next_id()
        sid, member = self.rng.choice(self.cast.suppliers[pid])
        data = b"%PDF-1.7\n" + self.rng.randbytes(4096)
        name = f"Protokol_{n}_{uuid.uuid4().hex[:6]}.pdf"
        room = self.room(member, pid, f"supplier:{sid}")
        start = time.monotonic()
        await self.erp.send(
            "document.published",
            {
                "procurement_id": pid,
                "room": f"supplier:{sid}",
                "document": {
                    "type": "Протокол",
                    "filename": name,
                    "mime_type": "application/pdf",
                    "content_base64": base64.b64encode(data).decode(),
                    "sha256": hashlib.sha256(data).hexdigest(),
                },
            },
        )
        await member.until(
            lambda: any(
                content_of(e).get("filename") == name for e in member.timeline.get(room, [])
            ),
            300,
            f"document {name}",
        )
        self.seen.add("document (202 → seen)", time.monotonic() - start)

    async def vote(self) -> None:
        pid, n = self.pid(), self.next_id()
        vote_id = f"V-{n}-{uuid.uuid4().hex[:6]}"
        question = f"Утвердить спецификацию {n}? ({vote_id})"
        closes = datetime.now(UTC) + timedelta(days=1)
        request = seed_vote(pid, vote_id, closes) | {"quorum": 2, "question": question}
        start = time.monotonic()
        await self.erp.send("vote.requested", request)
        answered = await asyncio.gather(
            *(self.answer(member, pid, vote_id, start) for member in self.cast.commission)
        )
        last = max(answered)
        await self.callback("vote.completed", lambda d: d.get("vote_id") == vote_id)
        self.seen.add("vote.completed (last answer → callback)", time.monotonic() - last)

    async def answer(self, member: SteadyPerson, pid: str, vote_id: str, start: float) -> float:
        room = self.room(member, pid, "commission")
        poll = await member.until(
            lambda: next(
                (
                    e
                    for e in member.timeline.get(room, [])
                    if is_poll_start(e) and vote_id in poll_question(e)
                ),
                None,
            ),
            300,
            f"the poll of {vote_id}",
        )
        self.seen.add("poll (202 → seen)", time.monotonic() - start)
        response = {
            POLL_RESPONSE: {"answers": [self.rng.choice(["for", "against", "abstain"])]},
            "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
        }
        await member.send(room, POLL_RESPONSE, response)
        return time.monotonic()

    async def approval(self) -> None:
        pid, n = self.pid(), self.next_id()
        approval_id = f"A-{n}-{uuid.uuid4().hex[:6]}"
        approvers = self.rng.sample(self.cast.commission, 2)
        data = b"%PDF-1.7\n" + self.rng.randbytes(2048)
        request = {
            "procurement_id": pid,
            "approval_id": approval_id,
            "initiator": self.cast.manager.user_id,
            "document": {
                "type": "Торгово-коммерческий анализ (ТКА)",
                "number": f"234/{n}",
                "series": "01",
                "valid_until": "2030-12-31",
                "filename": f"TKA_{n}.pdf",
                "content_base64": base64.b64encode(data).decode(),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
            "mode": "parallel",
            "group": "Комиссия закупки",
            "approvers": [a.user_id for a in approvers],
            "require_signature": False,
            "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        }
        start = time.monotonic()
        await self.erp.send("approval.requested", request)
        key = f"approval:{approval_id}"
        clicked = await asyncio.gather(*(self.approve(a, key, start) for a in approvers))
        await self.callback("approval.completed", lambda d: d.get("approval_id") == approval_id)
        self.seen.add(
            "approval.completed (last click → callback)", time.monotonic() - max(clicked)
        )

    async def approve(self, approver: SteadyPerson, key: str, start: float) -> float:
        room = await approver.until(lambda: approver.room_of(key), 300, f"the room {key}")
        self.seen.add("approval room (202 → joined)", time.monotonic() - start)
        # The card shows once the room exists; a decision before it is refused, as to a person.
        await approver.until(
            lambda: any(
                e.get("sender") == BOT and str(content_of(e).get("body", "")).startswith("Соглас")
                for e in approver.timeline.get(room, [])
            ),
            300,
            f"the card in {key}",
        )
        refusal = await decide_by_click(approver, room, APPROVE)
        if refusal:
            raise RuntimeError(f"{approver.name} in {key}: {refusal[:200]}")
        return time.monotonic()

    async def callback(self, kind: str, matches: Callable[[dict[str, Any]], bool]) -> None:
        deadline = time.monotonic() + 300
        while not self.desk.ids_of(kind, matches):
            if time.monotonic() > deadline:
                raise WaitedTooLong(f"no {kind} in 300 s")
            await asyncio.sleep(0.05)  # the desk records as it is called; nothing to wait on

    # People --------------------------------------------------------------------------------

    def room(self, person: SteadyPerson, pid: str, key: str) -> str:
        room = person.rooms_by_key.get((pid, key))
        assert room is not None, (person.name, pid, key)
        return room

    async def chat(self) -> None:
        pid = self.pid()
        sid, member = self.rng.choice(self.cast.suppliers[pid])
        room = self.room(member, pid, f"supplier:{sid}")
        n = self.next_id()
        if n % 2:
            await member.say(room, f"Добрый день, по позиции {n} отгрузка в пятницу")
        else:
            await self.cast.manager.say(room, f"Спасибо, принято ({n})")

    async def help(self) -> None:
        pid = self.pid()
        manager = self.cast.manager
        org = self.room(manager, pid, "org")
        start = time.monotonic()
        asked = await manager.say(org, HELP)
        await manager.until(
            lambda: any(
                e.get("sender") == BOT and reply_target(e) == asked
                for e in manager.timeline.get(org, [])
            ),
            300,
            "the help card",
        )
        self.seen.add("help reply (send → seen)", time.monotonic() - start)


# Setting up ------------------------------------------------------------------------------------


async def gather_cast(stand: Stand, procurements: int) -> tuple[Cast, list[str]]:
    synapse = stand.synapse

    async def person(localpart: str, name: str) -> SteadyPerson:
        login = await synapse.register(localpart, f"pw-{localpart}", displayname=name)
        return SteadyPerson(synapse.url, login["user_id"], login["access_token"], name)

    pids = [f"{26900 + i}" for i in range(procurements)]
    manager = await person("konovalov", "Коновалов А.С.")
    commission = [
        await person("petrov", "Петров И.И."),
        await person("kononov", "Кононов В.П."),
        await person("ivanova", "Иванова М.А."),
    ]
    suppliers = {
        pid: [
            (f"s{pid}-{j}", await person(f"s{pid}m{j}", f"Поставщик {pid}/{j}")) for j in range(2)
        ]
        for pid in pids
    }
    team = (await synapse.register("ivanova-team", "pw", displayname="Иванова Т."))["user_id"]
    return Cast(manager, commission, suppliers, team), pids


async def open_procurements(cast: Cast, erp: ERP, pids: list[str]) -> None:
    for pid in pids:
        await erp.send("procurement.upserted", snapshot(cast, pid, 1))
    for pid in pids:
        wanted = [
            (
                cast.manager,
                ["org", "commission", *(f"supplier:{s}" for s, _ in cast.suppliers[pid])],
            ),
            *((m, ["commission"]) for m in cast.commission),
            *((member, [f"supplier:{sid}"]) for sid, member in cast.suppliers[pid]),
        ]
        for person, keys in wanted:
            for key in keys:
                await person.until(
                    lambda p=person, k=key, pid=pid: p.rooms_by_key.get((pid, k)),
                    300,
                    f"{pid} {key} joined",
                )


# Watching the processes ------------------------------------------------------------------------


async def take_sample(fleet: Fleet, session: aiohttp.ClientSession) -> Sample:
    return Sample(time.monotonic(), fleet.rss(), await fleet.scrapes(session))


def processed(scrape: Scrape | None) -> dict[str, float]:
    return {} if scrape is None else scrape.by_label("bridge_processed_total", "queue")


def minute_line(began: float, previous: Sample, sample: Sample, depths: dict[str, float]) -> str:
    window = sample.at - previous.at
    rates = []
    for before, now in zip(previous.scrapes, sample.scrapes, strict=True):
        done = sum(processed(now).values()) - sum(processed(before).values())
        rates.append(f"{done / window:6.1f}/s")
    waiting = sum(depths.values())
    return (
        f"  {(sample.at - began) / 60:5.1f} min  RSS "
        + "  ".join(f"{mib(r)} MiB" for r in sample.rss)
        + "   processed "
        + "  ".join(rates)
        + f"   waiting {waiting:.0f}"
    )


async def watch(fleet: Fleet, began: float, stop: asyncio.Event, samples: list[Sample]) -> None:
    async with aiohttp.ClientSession() as session:
        last_line = samples[-1] if samples else await take_sample(fleet, session)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_S)
            sample = await take_sample(fleet, session)
            samples.append(sample)
            if sample.at - last_line.at >= 59:
                first = next((s for s in sample.scrapes if s is not None), None)
                depths = {} if first is None else first.by_label("bridge_queue_depth", "queue")
                print(minute_line(began, last_line, sample, depths), flush=True)
                last_line = sample


# Reporting -------------------------------------------------------------------------------------


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "      —"
    return f"{seconds * 1000:7.0f} ms" if seconds < 10 else f"{seconds:7.1f} s "


def report(
    args: argparse.Namespace,
    fleet: Fleet,
    samples: list[Sample],
    warm_at: float,
    load: Load,
) -> None:
    warm = next(s for s in samples if s.at >= warm_at)
    last = samples[-1]
    window = last.at - warm.at
    print()
    print(
        f"soak: {args.minutes:g} min, {len(fleet)} processes on one PostgreSQL behind a "
        f"balancer, {args.procurements} procurements, rate ×{args.rate:g}; measured over the "
        f"last {window / 60:.1f} min (warm-up {(warm.at - samples[0].at) / 60:.1f} min)"
    )
    queues = sorted(
        {q for s in last.scrapes for q in processed(s)} - {"avatars"},
    )
    print(f"{'queue':<12}{'items/s':>9}  {'share by process':<22}{'p50':>10}{'p99':>10}")
    total = 0.0
    for queue in queues:
        done = [
            processed(b).get(queue, 0.0) - processed(a).get(queue, 0.0)
            for a, b in zip(warm.scrapes, last.scrapes, strict=True)
        ]
        total += sum(done)
        share = " / ".join(f"{d / sum(done):4.0%}" if sum(done) else "  — " for d in done)
        buckets = add_buckets(
            *(
                minus(b.buckets(LATENCY, queue=queue), a.buckets(LATENCY, queue=queue))
                for a, b in zip(warm.scrapes, last.scrapes, strict=True)
                if a is not None and b is not None
            )
        )
        print(
            f"{queue:<12}{sum(done) / window:>9.2f}  {share:<22}"
            f"{fmt(quantile(buckets, 0.5)):>10}{fmt(quantile(buckets, 0.99)):>10}"
        )
    print(f"{'all':<12}{total / window:>9.2f}")
    print("latency as people see it (after warm-up):")
    print(f"  {'':44}{'n':>5}{'p50':>11}{'p99':>11}")
    for kind, values in sorted(load.seen.after(warm.at).items()):
        print(
            f"  {kind:44}{len(values):>5}{fmt(percentile(values, 0.5)):>11}"
            f"{fmt(percentile(values, 0.99)):>11}"
        )
    if load.seen.gave_up:
        print(f"  gave up: {dict(load.seen.gave_up)}")
    print("resident memory:")
    for n, process in enumerate(fleet):
        after = [r for s in samples if s.at >= warm.at and (r := s.rss[n]) is not None]
        start, end = warm.rss[n], last.rss[n]
        growth = "—" if not start or not end else f"{(end - start) / start:+.1%}"
        peak = max(after) if after else None
        print(
            f"  {process.name}: after warm-up {mib(start)} MiB, end {mib(end)} MiB, "
            f"peak {mib(peak)} MiB, growth {growth}   (target < 10 % over 30 min)"
        )


async def leases(database: str, fleet: Fleet) -> str:
    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            "SELECT name, holder FROM lease WHERE until > $1 AND name NOT LIKE 'process:%'",
            int(time.time() * 1000),
        )
    finally:
        await conn.close()
    return lease_table(rows, {p.pid: p.name for p in fleet if p.pid is not None})


# The run ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    stand = Stand("postgres")
    named(stand, "bench-soak-")
    print(f"work directory: {stand.work}", flush=True)
    failed = True
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(lambda: None if failed else shutil.rmtree(stand.work, ignore_errors=True))
        stack.push_async_callback(stand.drop_database)
        desk = CallbackDesk(stand.callback_secret)
        database = await stand.database_url()
        base = stand.write_config(database, desk.url)
        ports = [free_port() for _ in range(args.processes)]
        configs = process_configs(base, ports)
        stack.callback(stand.synapse.stop)
        await stand.synapse.start()
        await desk.start()
        stack.push_async_callback(desk.stop)
        balancer = Balancer(stand.bridge_port, [f"http://127.0.0.1:{p}" for p in ports])
        await balancer.start()
        stack.push_async_callback(balancer.stop)
        fleet = Fleet(configs, ports, stand.work)
        stack.callback(fleet.stop)
        await fleet.start()
        erp = ERP(balancer.url, stand.webhook_secret, stand.erp_token)
        stack.push_async_callback(erp.close)
        cast, pids = await gather_cast(stand, args.procurements)
        for person in cast.everyone:
            stack.push_async_callback(person.close)
            person.start_syncing()
        await open_procurements(cast, erp, pids)
        held = await leases(database, fleet)
        pid_list = ", ".join(str(p.pid) for p in fleet)
        print(
            f"{len(pids)} procurements open, {len(fleet)} processes (pids {pid_list}); "
            f"leases: {held}",
            flush=True,
        )
        load = Load(cast, erp, desk, pids, args.rate)
        began = time.monotonic()
        load.stop_at = began + args.minutes * 60
        warmup = args.warmup_minutes
        if warmup is None:
            warmup = max(1.0, args.minutes / 10)
        samples: list[Sample] = []
        async with aiohttp.ClientSession() as session:
            samples.append(await take_sample(fleet, session))
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(fleet, began, stop, samples))
        await asyncio.gather(*load.streams())
        # What is under way finishes (a vote's answers, an approval's clicks), within reason.
        if load.tasks:
            await asyncio.wait(set(load.tasks), timeout=120)
        stop.set()
        await watcher
        report(args, fleet, samples, began + warmup * 60, load)
        print(f"leases at the end: {await leases(database, fleet)}")
        print(
            f"balancer: {' / '.join(str(n) for n in balancer.forwarded)} requests forwarded, "
            f"{balancer.unanswered} unanswered (502)"
        )
        print(
            f"webhooks: {erp.sent} sent, {erp.retries} retried; callbacks: "
            f"{len({c.webhook_id for c in desk.received})} distinct, {desk.redelivered} again, "
            f"{desk.unsigned} badly signed"
        )
        parked = await erp.get("/api/v1/dead-letters", stand.operator_token)
        letters = [f"{q}: {d['name']}: {d['last_error']}" for q, ds in parked.items() for d in ds]
        print(f"dead letters: {len(letters) or 'none'}")
        for letter in letters[:20]:
            print(f"  {letter}")
        exits = {p.name: p.exits for p in fleet if p.exits}
        print(f"exits nobody asked for: {exits or 'none'}")
        log_summary(fleet)
        for task in list(load.tasks):
            task.cancel()
        failed = bool(letters or exits or load.seen.gave_up)
    if failed:
        print(f"work directory kept: {stand.work}")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--warmup-minutes", type=float, default=None)
    parser.add_argument("--procurements", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rate", type=float, default=1.0, help="scales every stream")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
