"""What a look after an outage takes from a room: the events sent in its window, oldest first,
read page by page back until one is older than the window, and nothing malformed."""

from __future__ import annotations

from typing import Any

from bridge.matrix.catchup import CatchUp


class Api:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages
        self.asked: list[dict[str, str]] = []

    async def request(self, _method: Any, _path: Any, query_params: dict[str, str]) -> Any:
        self.asked.append(dict(query_params))
        return self.pages.pop(0)


class Client:
    def __init__(self, api: Api) -> None:
        self.api = api


def ev(n: int, ts: int) -> dict[str, Any]:
    return {"event_id": f"$e{n}", "type": "m.room.message", "origin_server_ts": ts}


async def test_a_room_is_read_back_to_the_window_and_given_oldest_first() -> None:
    api = Api(
        [
            {"chunk": [ev(6, 960), ev(5, 900), ev(4, 800)], "end": "t1"},
            {"chunk": [ev(3, 700), {"type": "no id", "origin_server_ts": 650}], "end": "t2"},
            {"chunk": [ev(2, 600), ev(1, 100)], "end": "t3"},
            {"chunk": [ev(0, 50)], "end": "t4"},
        ]
    )
    look = CatchUp(Client(api), inbox=None, rooms=None, max_backoff_s=1)  # type: ignore[arg-type]
    events = await look._latest("!room", since=500, until=950)
    assert [e["event_id"] for e in events] == ["$e2", "$e3", "$e4", "$e5"]
    assert {e["room_id"] for e in events} == {"!room"}
    assert [a.get("from") for a in api.asked] == [None, "t1", "t2"]  # stopped at $e1
