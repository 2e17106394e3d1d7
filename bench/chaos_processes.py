"""Chaos with several processes: bridge processes on one PostgreSQL behind a balancer, one of
them SIGKILLed at random each round, Synapse and PostgreSQL restarted in some rounds, while a
procurement is busy; nothing may be lost or doubled.

    .venv/bin/python bench/chaos_processes.py [--processes 2] [--rounds 20] [--seed N]
                                              [--synapse-restarts 5] [--postgres-restarts 5]
                                              [--settle 300]

Run by hand, not in CI. Restarting the machine's PostgreSQL cluster (`pg_ctlcluster
--skip-systemctl-redirect 15 main restart`, fast shutdown) cuts every connection to every
database of the cluster, so a restart is skipped (and said so) while anyone else is connected
to another database, unless `--force-postgres-restarts`. The cluster is started again at the
end if it is not running.

bench/chaos.py's procurement, people, rounds and census, with `--processes` bridges
(`python -m bridge`, one config each, one database, one audit key) behind a round-robin
balancer at the address Synapse and the ERP use (tests/integration/test_processes.py's), and
a supervisor that starts a process again when it exits by itself (a start refused while the
homeserver or the database is away exits, as systemd's Restart= or a Deployment would see
it). Each round, at once, as in chaos.py:

* the ERP sends 3 notices, a document, a vote and a parallel approval (each webhook again
  under the same id on a connection error or a 5xx);
* the manager asks «помощь» twice, the supplier's member posts a file, the commission answers
  the round's poll, the two approvers join the approval's room, wait for its card, type
  «согласовать» and click «✅ Да» under the bot's confirmation (a decision typed as text counts
  only once confirmed);
* a random 0.05–2 s into the round one process, drawn at random, is SIGKILLed (its whole
  group) and started again 0–3 s later (the others carry on, taking its leases and claims
  over within 15 s);
* in `--synapse-restarts` rounds drawn at random Synapse is stopped (SIGTERM) and started
  again at a random moment of the round's first 2 s; in `--postgres-restarts` rounds
  PostgreSQL is. People's clients retry their sends under the same transaction id while
  Synapse is away, as Element does.

Then, as chaos.py, the script waits until every expected effect is visible or the queues stay
empty and nothing changes, and counts every effect from the outside: one line per kind with
expected, once, lost, doubled; a callback delivered twice under the same `webhook-id` counts
once. Lost and doubled must be 0, and no dead letters; otherwise each faulty item is listed
with its round and the disturbances of that round, the exit status is 1 and the work directory
(each process's log `bridge-N.log` with every kill and restart marked «bench: …», Synapse's
log) is kept. Reproduce with the same `--seed` (the moments are the seed's; what the machine
does in between is not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chaos
from chaos import (
    APPROVE,
    ERP,
    PATIENCE_S,
    CallbackDesk,
    Cast,
    Outcome,
    Round,
    Stand,
    WaitedTooLong,
    content_of,
    from_bot,
)
from fleet import (
    Balancer,
    Fleet,
    SteadyPerson,
    decide_by_click,
    lease_table,
    log_summary,
    named,
    process_configs,
    queue_depths,
)

from bridge.localsynapse import LocalSynapse, free_port

ADMIN_URL = chaos.ADMIN_URL
PG_RESTART = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"]
PG_START = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "start"]


@dataclass
class Disturbance:
    """What besides the people and the ERP happens in a round, drawn from the seed."""

    victim: int  # which process is SIGKILLed
    restart_after: float  # s from the kill to the start
    synapse_at: float | None = None  # s into the round Synapse is restarted
    postgres_at: float | None = None  # s into the round PostgreSQL is restarted
    notes: list[str] = field(default_factory=list)  # what happened, for the report

    def describe(self) -> str:
        parts = [f"kill bridge-{self.victim}, back after {self.restart_after:.1f} s"]
        if self.synapse_at is not None:
            parts.append(f"Synapse restart at {self.synapse_at:.2f} s")
        if self.postgres_at is not None:
            parts.append(f"PostgreSQL restart at {self.postgres_at:.2f} s")
        return "; ".join(parts)


def draw_disturbances(
    rng: random.Random, rounds: int, processes: int, synapse: int, postgres: int
) -> list[Disturbance]:
    drawn = [
        Disturbance(victim=rng.randrange(processes), restart_after=rng.uniform(0, 3.0))
        for _ in range(rounds)
    ]
    for n in rng.sample(range(rounds), min(synapse, rounds)):
        drawn[n].synapse_at = rng.uniform(0, 2.0)
    for n in rng.sample(range(rounds), min(postgres, rounds)):
        drawn[n].postgres_at = rng.uniform(0, 2.0)
    return drawn


# People ----------------------------------------------------------------------------------------


async def gather_cast(synapse: LocalSynapse) -> Cast:
    """chaos.py's cast, with clients that ride out a homeserver restart."""

    async def person(localpart: str, name: str) -> SteadyPerson:
        login = await synapse.register(localpart, f"pw-{localpart}", displayname=name)
        return SteadyPerson(synapse.url, login["user_id"], login["access_token"], name)

    commission = [
        ("petrov", "Петров И.И."),
        ("kononov", "Кононов В.П."),
        ("ivanova", "Иванова М.А."),
    ]
    return Cast(
        manager=await person("konovalov", "Коновалов А.С."),
        commission=[await person(u, n) for u, n in commission],
        supplier_member=await person("kirillov", "Кириллов Д.Н."),
    )


def has_card(events: list[dict[str, Any]]) -> bool:
    return any(
        from_bot(e) and str(content_of(e).get("body", "")).startswith("Согласование")
        for e in events
    )


# What people sent each round (round → (what, event id)): where an effect went missing, the
# bridge's store tells whether the event ever reached it.
Sent = dict[int, list[tuple[str, str]]]


async def approver_decides(round_: Round, approver: SteadyPerson, sent: Sent) -> None:
    """Joins the approval's room once invited, waits for its card, types «согласовать» and
    clicks the confirmation."""
    key = f"approval:{round_.approval_id}"
    room = await approver.until(lambda: approver.room_of(key), PATIENCE_S, f"the room {key}")
    await approver.until(
        lambda: has_card(approver.timeline.get(room, [])), PATIENCE_S, f"the card in {key}"
    )
    events: list[str] = []
    try:
        refusal = await decide_by_click(approver, room, APPROVE, events)
    finally:
        what = f"{approver.name}: «{APPROVE}», then the click"
        sent.setdefault(round_.number, []).extend((what, e) for e in events)
    if refusal:
        round_.gave_up.append(f"{approver.name} in {key} was answered: {refusal[:200]}")


async def member_votes(round_: Round, member: SteadyPerson, answer: str, sent: Sent) -> None:
    """chaos.member_votes, keeping the answer's event id."""
    room = member.room_of("commission")
    assert room is not None
    poll = await member.until(
        lambda: chaos.poll_of(round_.vote_id, member.timeline.get(room, [])),
        PATIENCE_S,
        f"the poll of {round_.vote_id}",
    )
    response = {
        chaos.POLL_RESPONSE: {"answers": [answer]},
        "m.relates_to": {"rel_type": "m.reference", "event_id": poll["event_id"]},
    }
    event_id = await member.send(room, chaos.POLL_RESPONSE, response)
    sent.setdefault(round_.number, []).append((f"{member.name}: poll answer", event_id))


# Disturbances ----------------------------------------------------------------------------------


class Chaos:
    """Kills and restarts, marked in every process's log."""

    def __init__(
        self, fleet: Fleet, synapse: LocalSynapse, database: str, force_postgres: bool
    ) -> None:
        self.fleet = fleet
        self.synapse = synapse
        self.database = database.rsplit("/", 1)[1]
        self.force_postgres = force_postgres
        self.postgres_skipped = 0
        self.kills = 0
        self.synapse_restarts: list[float] = []  # seconds each took
        self.postgres_restarts: list[float] = []

    def mark(self, text: str) -> None:
        for process in self.fleet:
            process.mark(text)

    async def kill(self, round_: Round, d: Disturbance, delay: float) -> None:
        await asyncio.sleep(delay)  # the random moment is the point of the exercise
        victim = self.fleet[d.victim]
        self.kills += 1
        victim.kill(f"chaos kill #{self.kills}, round {round_.number}, {delay:.2f} s in")
        round_.kills.append(self.kills)
        await asyncio.sleep(d.restart_after)  # how long the others are alone
        began = time.monotonic()
        await victim.start()
        victim.mark(f"healthy again after chaos kill #{self.kills}")
        d.notes.append(f"bridge-{d.victim} healthy {time.monotonic() - began:.1f} s after start")

    async def restart_synapse(self, round_: Round, d: Disturbance, at: float) -> None:
        await asyncio.sleep(at)
        began = time.monotonic()
        self.mark(f"Synapse restarting (round {round_.number})")
        await asyncio.get_running_loop().run_in_executor(None, self.synapse.stop)
        await self.synapse.start()
        took = time.monotonic() - began
        self.mark(f"Synapse back after {took:.1f} s")
        self.synapse_restarts.append(took)
        d.notes.append(f"Synapse down {took:.1f} s")

    async def restart_postgres(self, round_: Round, d: Disturbance, at: float) -> None:
        await asyncio.sleep(at)
        if not self.force_postgres and (others := await other_clients(self.database)):
            d.notes.append(f"PostgreSQL restart skipped: other clients on the cluster ({others})")
            self.postgres_skipped += 1
            return
        began = time.monotonic()
        self.mark(f"PostgreSQL restarting (round {round_.number})")
        done = await asyncio.create_subprocess_exec(
            *PG_RESTART, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await done.communicate()
        took = time.monotonic() - began
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL restart failed: {output.decode(errors='replace')}")
        self.mark(f"PostgreSQL back after {took:.1f} s")
        self.postgres_restarts.append(took)
        d.notes.append(f"PostgreSQL restart took {took:.1f} s")


async def play(
    round_: Round, d: Disturbance, cast: Cast, erp: ERP, chaos_: Chaos, sent: Sent
) -> None:
    """Everyone acts at once; a person who waited in vain is noted, not fatal: the census will
    show what went missing."""
    began = time.monotonic()
    actors = [
        chaos.erp_sends(round_, cast, erp, began),
        chaos.manager_asks_for_help(round_, cast, began),
        chaos.supplier_posts_offer(round_, cast, began),
        *(
            member_votes(round_, m, a, sent)  # type: ignore[arg-type]
            for m, a in zip(cast.commission, round_.answers, strict=True)
        ),
        *(approver_decides(round_, cast.commission[i], sent) for i in round_.approvers),  # type: ignore[arg-type]
        chaos_.kill(round_, d, round_.kill_after[0]),
    ]
    if d.synapse_at is not None:
        actors.append(chaos_.restart_synapse(round_, d, d.synapse_at))
    if d.postgres_at is not None:
        actors.append(chaos_.restart_postgres(round_, d, d.postgres_at))
    results = await asyncio.gather(*actors, return_exceptions=True)
    mine = sent.setdefault(round_.number, [])
    mine.extend((f"{cast.manager.name}: «{chaos.HELP}»", e) for e in round_.help_asks)
    if round_.upload_event:
        mine.append((f"{cast.supplier_member.name}: a file", round_.upload_event))
    for result in results:
        if isinstance(result, WaitedTooLong):
            round_.gave_up.append(str(result))
        elif isinstance(result, BaseException):
            raise result


# Counting --------------------------------------------------------------------------------------


async def other_clients(ours: str) -> str:
    """Databases of the cluster that someone else is connected to ("" when none): a restart
    would cut their connections too."""
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        rows = await conn.fetch(
            "SELECT datname, COUNT(*) AS n FROM pg_stat_activity WHERE datname IS NOT NULL "
            "AND datname <> $1 AND pid <> pg_backend_pid() GROUP BY datname",
            ours,
        )
    finally:
        await conn.close()
    return ", ".join(f"{r['datname']} ×{r['n']}" for r in rows)


async def post_mortem(round_: Round, d: Disturbance, fleet: Fleet, database: str) -> None:
    """Right after a round where someone waited in vain: what it waited for, the queues, the
    leases and each process's health, while the state is still there to see."""
    for note in [*round_.gave_up, *d.notes]:
        print(f"    {note}")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for process in fleet:
            try:
                async with session.get(f"{process.url}/health") as resp:
                    health = f"{resp.status} {await resp.text()}"
            except (aiohttp.ClientError, TimeoutError) as e:
                health = repr(e)
            print(f"    {process.name} (pid {process.pid}): /health {health}")
        depths = await queue_depths(session, [p.url for p in fleet])
    print(f"    queues waiting: { {q: n for q, n in depths.items() if n} }")
    try:
        held = await leases(database, fleet)
    except (OSError, asyncpg.PostgresError) as e:
        held = repr(e)
    print(f"    leases: {held}", flush=True)


def keep_or_remove(work: Path, outcome: Outcome) -> None:
    """The work directory stays unless the run passed: the logs are the evidence, also of a
    run cut short."""
    if outcome.verdict == "passed":
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory kept: {work} (each process's log: {work}/bridge-N.log)")


class Depths:
    """What chaos.settle asks of the bridge: its queues' depths, from any process that answers."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    async def queue_depths(self) -> dict[str, float] | None:
        async with aiohttp.ClientSession() as session:
            found = await queue_depths(session, [p.url for p in self.fleet if p.alive()])
        return found or None


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


async def postgres_running() -> None:
    """Leaves the cluster running: started again if it does not answer."""
    for attempt in range(30):
        try:
            conn = await asyncpg.connect(ADMIN_URL)
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError):
            if attempt == 5:
                print("PostgreSQL does not answer: starting the cluster", flush=True)
                starting = await asyncio.create_subprocess_exec(*PG_START)
                await starting.wait()
            await asyncio.sleep(1.0)  # the cluster starting up
    raise RuntimeError("PostgreSQL is not running and did not start")


async def diagnose(database: str, rounds: list[int], sent: Sent, synapse_log: Path) -> None:
    """Where effects went missing: which of the people's events of those rounds never reached
    the bridge's store, and whether Synapse sent a transaction id again after a restart."""
    conn = await asyncpg.connect(database)
    try:
        for number in rounds:
            for what, event_id in sent.get(number, []):
                row = await conn.fetchrow(
                    "SELECT status, attempts, last_error FROM matrix_event WHERE event_id=$1",
                    event_id,
                )
                state = "NOT in the bridge's store" if row is None else f"stored, {row['status']}"
                if row is not None and row["last_error"]:
                    state += f" ({row['attempts']} attempts: {row['last_error'][:120]})"
                print(f"  round {number}: {what} {event_id}: {state}")
        remembered = await conn.fetchval("SELECT COUNT(*) FROM hs_transaction")
    finally:
        await conn.close()
    log = synapse_log.read_text()  # noqa: ASYNC240 - once, at the end
    answered = Counter(re.findall(r"PUT \S+/_matrix/app/v1/transactions/(\d+): 200", log))
    again = sorted(int(t) for t, n in answered.items() if n > 1)
    print(
        f"  Synapse's transactions answered 200: {sum(answered.values())}, under "
        f"{len(answered)} ids; ids answered 200 more than once: {len(again)}"
        + (f" ({again[0]}…{again[-1]})" if again else "")
        + f"; the bridge remembers {remembered} transaction ids"
    )


def report(
    args: argparse.Namespace,
    rounds: list[Round],
    disturbances: list[Disturbance],
    rows: list[chaos.Row],
    how: str,
    parked: list[str],
    erp: ERP,
    desk: CallbackDesk,
    fleet: Fleet,
    balancer: Balancer,
    chaos_: Chaos,
    began: float,
) -> bool:
    """Prints the result; True when anything was lost, doubled or parked."""
    print()
    print(
        f"chaos: {len(rounds)} rounds, {len(fleet)} processes on PostgreSQL behind a balancer, "
        f"seed {args.seed}, {time.monotonic() - began:.0f} s in all; settled: {how}"
    )
    skipped = (
        f", {chaos_.postgres_skipped} skipped for other clients" if chaos_.postgres_skipped else ""
    )
    print(
        f"disturbances: {chaos_.kills} SIGKILLs ("
        + ", ".join(f"{p.name} {p.kills}" for p in fleet)
        + f"), {len(chaos_.synapse_restarts)} Synapse restarts "
        f"({', '.join(f'{t:.0f} s' for t in chaos_.synapse_restarts)}), "
        f"{len(chaos_.postgres_restarts)} PostgreSQL restarts "
        f"({', '.join(f'{t:.1f} s' for t in chaos_.postgres_restarts)}){skipped}"
    )
    chaos.print_table(rows)
    print(
        f"webhooks: {erp.sent} sent, {erp.retries} attempts again under the same id,"
        f" {erp.duplicates} answered as duplicates"
    )
    print(
        f"callbacks: {len({c.webhook_id for c in desk.received})} distinct ids,"
        f" {desk.redelivered} delivered again under the same id, {desk.unsigned} badly signed"
    )
    print(
        f"balancer: {' / '.join(str(n) for n in balancer.forwarded)} forwarded, "
        f"{balancer.unanswered} answered by no process (502)"
    )
    exits = {p.name: p.exits for p in fleet if p.exits}
    spawns = {p.name: p.spawns for p in fleet}
    print(f"exits nobody asked for: {exits or 'none'}; spawns (starts and restarts): {spawns}")
    print(f"dead letters: {len(parked) or 'none'}")
    for letter in parked:
        print(f"  {letter}")
    faulty = any(row.lost() or row.doubled() for row in rows)
    if faulty or any(r.gave_up for r in rounds):
        chaos.print_faults(rows, rounds)
        for number in troubled_rounds(rows, rounds):
            d = disturbances[number - 1]
            print(f"  round {number}: {d.describe()} ({'; '.join(d.notes)})")
    log_summary(fleet)
    return faulty or bool(parked) or desk.unsigned > 0


def troubled_rounds(rows: list[chaos.Row], rounds: list[Round]) -> list[int]:
    troubled = {n for row in rows for (n, _), k in row.found.items() if k != 1}
    return sorted(troubled | {r.number for r in rounds if r.gave_up})


# The run ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    rng = random.Random(args.seed)
    rounds = chaos.draw_rounds(rng, args.rounds, 1)
    disturbances = draw_disturbances(
        random.Random(args.seed + 1),
        args.rounds,
        args.processes,
        args.synapse_restarts,
        args.postgres_restarts,
    )
    stand = Stand("postgres")
    named(stand, "bench-processes-")
    outcome = Outcome()
    chaos.stop_on_signals(outcome)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(lambda: keep_or_remove(stand.work, outcome))
        stack.push_async_callback(stand.drop_database)
        stack.push_async_callback(postgres_running)  # runs before the database is dropped
        desk = CallbackDesk(stand.callback_secret)
        database = await stand.database_url()
        base = stand.write_config(database, desk.url)
        ports = [free_port() for _ in range(args.processes)]
        fleet = Fleet(process_configs(base, ports), ports, stand.work)
        stack.callback(stand.synapse.stop)
        await stand.synapse.start()
        await desk.start()
        stack.push_async_callback(desk.stop)
        balancer = Balancer(stand.bridge_port, [p.url for p in fleet])
        await balancer.start()
        stack.push_async_callback(balancer.stop)
        stack.callback(fleet.stop)
        await fleet.start()
        erp = ERP(stand.bridge_url, stand.webhook_secret, stand.erp_token)
        stack.push_async_callback(erp.close)
        cast = await gather_cast(stand.synapse)
        for person in cast.everyone:
            stack.push_async_callback(person.close)
            person.start_syncing()
        await chaos.open_procurement(cast, erp)
        print(
            f"procurement {chaos.PROCUREMENT} open; {args.rounds} rounds, {len(fleet)} processes, "
            f"seed {args.seed}; leases: {await leases(database, fleet)}",
            flush=True,
        )
        chaos_ = Chaos(fleet, stand.synapse, database, args.force_postgres_restarts)
        sent: Sent = {}
        for round_, d in zip(rounds, disturbances, strict=True):
            started = time.monotonic()
            await play(round_, d, cast, erp, chaos_, sent)
            print(
                f"round {round_.number:>2}: {time.monotonic() - started:5.1f} s, "
                f"killed at {round_.kill_after[0]:.2f} s: {d.describe()}",
                flush=True,
            )
            if round_.gave_up:
                await post_mortem(round_, d, fleet, database)
        rows, how = await chaos.settle(rounds, cast, erp, desk, Depths(fleet), args.settle)  # type: ignore[arg-type]
        parked = await chaos.dead_letters(erp, stand.operator_token)
        print(f"leases at the end: {await leases(database, fleet)}")
        failed = report(
            args,
            rounds,
            disturbances,
            rows,
            how,
            parked,
            erp,
            desk,
            fleet,
            balancer,
            chaos_,
            began,
        )
        if failed:
            await diagnose(database, troubled_rounds(rows, rounds), sent, stand.synapse.log_path)
        outcome.verdict = "failed" if failed else "passed"
    return 1 if outcome.verdict == "failed" else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1 << 32))
    parser.add_argument("--synapse-restarts", type=int, default=5)
    parser.add_argument("--postgres-restarts", type=int, default=5)
    parser.add_argument(
        "--settle", type=float, default=300.0, help="seconds to wait for the bridge at the end"
    )
    parser.add_argument(
        "--force-postgres-restarts",
        action="store_true",
        help="restart PostgreSQL even while others are connected to the cluster's databases",
    )
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(run(args)))
    except asyncio.CancelledError:
        sys.exit(130)  # interrupted; everything was cleaned up on the way out


if __name__ == "__main__":
    main()
