"""How processes share what one at a time runs: each takes its fair share of the leases, one
alone takes them all, a lease given up waits one round for the others, and a dead process's
leases pass on once they run out."""

from __future__ import annotations

from typing import Any

import pytest

from bridge import processes
from bridge.processes import Membership

NAMES = ("events", "webhooks", "timers")


class FakeLeases:
    """The lease table, in memory, with a clock the test moves."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, int]] = {}

    async def hold(self, name: str, owner: str, now: int, until: int) -> bool:
        holder = self.rows.get(name)
        if holder is None or holder[0] == owner or holder[1] < now:
            self.rows[name] = (owner, until)
            return True
        return False

    async def runs_out_at(self, name: str) -> int | None:
        row = self.rows.get(name)
        return None if row is None else row[1]

    async def let_go(self, name: str, owner: str) -> None:
        if self.rows.get(name, ("", 0))[0] == owner:
            del self.rows[name]

    async def live(self, prefix: str, now: int) -> int:
        return sum(
            1 for name, (_, until) in self.rows.items() if name.startswith(prefix) and until >= now
        )

    def held_by(self, owner: str, now: int) -> set[str]:
        return {
            n for n, (o, until) in self.rows.items() if o == owner and until >= now and n in NAMES
        }


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    now = [1_000_000]
    monkeypatch.setattr(processes, "now_ms", lambda: now[0])
    return now


def member(leases: Any, owner: str) -> Membership:
    return Membership(leases, owner, NAMES, [], max_backoff_s=1)


async def test_one_process_runs_everything(clock: list[int]) -> None:
    leases = FakeLeases()
    alone = member(leases, "a")
    await alone.cycle()
    assert all(alone.lease(name).held() for name in NAMES)


async def test_a_second_process_gets_its_share_and_a_dead_ones_pass_on(clock: list[int]) -> None:
    leases = FakeLeases()
    a, b = member(leases, "a"), member(leases, "b")
    await a.cycle()
    for _ in range(3):  # a few rounds of both
        clock[0] += 5_000
        await a.cycle()
        await b.cycle()
    held_a, held_b = leases.held_by("a", clock[0]), leases.held_by("b", clock[0])
    assert held_a | held_b == set(NAMES)
    assert not held_a & held_b
    assert len(held_a) == 2
    assert len(held_b) == 1
    # What this process runs is what the table says it holds, nothing more.
    assert {n for n in NAMES if a.lease(n).held()} == held_a
    assert {n for n in NAMES if b.lease(n).held()} == held_b
    # a stops renewing (killed): once its leases run out, b runs everything.
    clock[0] += processes.LEASE_MS + 1
    await b.cycle()
    clock[0] += 5_000
    await b.cycle()
    assert leases.held_by("b", clock[0]) == set(NAMES)


async def test_a_killed_holders_leases_are_taken_the_moment_they_run_out(
    clock: list[int],
) -> None:
    leases = FakeLeases()
    a, b = member(leases, "a"), member(leases, "b")
    await a.cycle()  # a holds everything
    clock[0] += 1_000
    wait_s = await b.cycle()  # b looks, and
    clock[0] += 1
    await a.cycle()  # a renews just after and is killed
    killed_at = clock[0]
    # b runs as its loop would: each round when the previous one said.
    while True:
        clock[0] += max(1, int(wait_s * 1000))
        wait_s = await b.cycle()
        if leases.held_by("b", clock[0]) == set(NAMES):
            break
    assert clock[0] - killed_at <= processes.LEASE_MS + 1
