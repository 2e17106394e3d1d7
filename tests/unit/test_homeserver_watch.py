"""The homeserver's return is acted on exactly when it can be: by a process that started
meanwhile, and again and again while the store is down too."""

from __future__ import annotations

from typing import Any

from bridge.matrix.watch import HomeserverWatch


class Watch(HomeserverWatch):
    def __init__(self, answers: list[bool], store_up: list[bool]) -> None:
        super().__init__(session=None, homeserver="http://hs", on_back=self.retry)  # type: ignore[arg-type]
        self.answers = answers
        self.store_up = store_up
        self.retried = 0

    async def probe(self) -> None:
        if not self.answers.pop(0):
            raise ConnectionRefusedError("homeserver")

    async def retry(self) -> None:
        if not self.store_up.pop(0):
            raise ConnectionRefusedError("database")
        self.retried += 1


async def cycles(watch: Watch, n: int) -> list[Any]:
    results: list[Any] = []
    for _ in range(n):
        try:
            results.append(await watch.cycle())
        except ConnectionRefusedError as e:
            results.append(str(e))
    return results


async def test_a_process_starting_retries_what_others_left_backing_off() -> None:
    watch = Watch(answers=[True], store_up=[True])
    await cycles(watch, 2)
    assert watch.retried == 1
    assert watch.answers == []  # probed once, then idle until something fails


async def test_a_return_the_store_could_not_act_on_is_acted_on_later() -> None:
    watch = Watch(answers=[False, True, True, True], store_up=[False, False, True])
    results = await cycles(watch, 5)
    assert results[1:3] == ["database", "database"]
    assert watch.retried == 1
    assert watch.answers == []


async def test_a_failure_while_the_homeserver_answers_retries_nothing() -> None:
    watch = Watch(answers=[True, True], store_up=[True])
    await cycles(watch, 1)
    watch.suspect()
    await cycles(watch, 2)
    assert watch.retried == 1
