"""Full-text search over 100,000 messages: `SearchIndex.search` vs the raw full-text query.

    .venv/bin/python bench/search.py [--db postgres|sqlite|both] [--messages 100000]
                                     [--rooms 1000] [--member-of 200] [--repeat 100] [--seed 1]

The index is filled with Russian procurement chatter (seeded, the same on both databases)
spread over `--rooms` rooms; one person is a member of `--member-of` of them, so most
messages are in rooms they are not in. The fill is one transaction: the bulk by COPY
(PostgreSQL) or executemany into search_entry and search_fts with `index_terms`' stems
(SQLite, checked on a sample), the newest 1,000 messages through `SearchIndex.add`; then
PostgreSQL's VACUUM ANALYZE, as autovacuum would run after such a load. Each query (one
and two words, inflected forms, common and rare words, a word that never occurs) is asked
`--repeat` times after a warm-up, as the bridge asks it:
`SearchIndex.search(the person's rooms, query, 0, 10)`.

The floor is the same search done the best simple way straight on the driver, on the same
data, in the same run, with the query already turned into what the database matches:
PostgreSQL — one prepared asyncpg statement, `room_id = ANY($1) AND tsv @@
to_tsquery('russian', $2) ORDER BY ts DESC LIMIT 10`; SQLite — one aiosqlite
connection, the FTS5 MATCH of the ready stems joined to search_entry, the rooms as an
`IN (?, …)` list. Both sides must return the same hits. Bridge and raw runs alternate; the
p50 and p99 over every run of every query are compared (target: bridge p50 ≤ 1.5 × raw);
per query, the matches in the person's rooms and both medians are shown.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import aiosqlite
import asyncpg
from mautrix.util.async_db import Connection, Database

from bridge.db import open_database
from bridge.db.search import SearchIndex
from bridge.domain.search import (
    MAX_TEXT,
    fts5_query,
    index_terms,
    postgres_query,
    stem,
    words,
)

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_NAME = "bench_search"
LIMIT = 10
THROUGH_ADD = 1_000  # the newest messages go in through SearchIndex.add, the rest in bulk
WARMUP = 5

QUERIES = (
    "арматура",
    "арматуры",
    "поставка",
    "счёт",
    "рекламация",
    "СибЦемент",
    "поставка арматуры",
    "кабель ВВГнг",
    "рекламация бетона",
    "дирижабль",
)

# (nominative, genitive, accusative) and the specifications each is sold with.
PRODUCTS: tuple[tuple[tuple[str, str, str], tuple[str, ...]], ...] = (
    (("арматура", "арматуры", "арматуру"), ("А500С 12 мм", "А500С 16 мм", "А240 8 мм")),
    (("труба", "трубы", "трубу"), ("ВГП 32 мм", "40×20×2", "Ø57×3,5")),
    (("цемент", "цемента", "цемент"), ("М500 Д0", "М400 Д20")),
    (("кабель", "кабеля", "кабель"), ("ВВГнг 3×2,5", "АВБбШв 4×95", "ВВГнг 5×10")),
    (("щебень", "щебня", "щебень"), ("фр. 20–40", "гранитный 5–20")),
    (("бетон", "бетона", "бетон"), ("B25 П4", "B30 W8 F200")),
    (("профнастил", "профнастила", "профнастил"), ("С21 0,5 мм", "Н75-750")),
    (("кирпич", "кирпича", "кирпич"), ("М150 полнотелый", "облицовочный М175")),
    (("песок", "песка", "песок"), ("карьерный", "речной мытый")),
    (("утеплитель", "утеплителя", "утеплитель"), ("Rockwool 100 мм", "ППС-25")),
    (("швеллер", "швеллера", "швеллер"), ("16П", "20У")),
    (("лист", "листа", "лист"), ("г/к 10 мм", "оцинкованный 0,7 мм")),
    (("краска", "краски", "краску"), ("ПФ-115 белая", "ВД-АК-111")),
    (("грунтовка", "грунтовки", "грунтовку"), ("ГФ-021", "Церезит CT 17")),
)
SUPPLIERS = (
    "ООО «СтальИнвест»",
    "АО «Уралметаллторг»",
    "ООО «СибЦемент»",
    "ООО «ТД Кабельщик»",
    "ИП Петров А. В.",
    "ООО «Гранит-Строй»",
    "АО «Металлсервис»",
    "ООО «БетонМикс»",
    "ООО «КровляПрофи»",
    "ООО «Теплоизоляция-Центр»",
    "ООО «ЛКМ Снаб»",
    "ИП Галиев Р. Р.",
)
MONTHS = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)
UNITS = ("т", "м³", "шт.", "м", "пог. м", "упак.", "рулонов", "мешков", "поддонов")
SITES = ("ЖК «Северный»", "склад № 3", "корпус Б", "школа на Лесной", "котельная № 2")
# (weight, template): {nom} {gen} {acc} {spec} {supplier} {day} {month} {qty} {unit} {num}
# {money} {hour} {pct} {site}
TEMPLATES = (
    (12, "Поставка {gen} {spec} до {day} {month}"),
    (8, "{supplier} подтвердило поставку {gen} {spec}, {qty} {unit}"),
    (8, "Требуется {nom} {spec}, {qty} {unit}, объект {site}"),
    (6, "Счёт № {num} от {supplier} на {money} руб. за {acc} {spec}"),
    (6, "Коммерческое предложение {supplier}: {nom} {spec} по {money} руб./{unit}"),
    (5, "Доставка {gen} перенесена на {day} {month}, машина будет к {hour}:00"),
    (5, "Прошу согласовать закупку {gen} {spec} у {supplier}"),
    (4, "Остаток {gen} на складе — {qty} {unit}"),
    (4, "Сертификаты качества на {acc} {spec} приложены"),
    (4, "Отгрузка {gen} задерживается, {supplier} обещает к {day} {month}"),
    (3, "Цена {gen} выросла на {pct}%, нужна новая заявка"),
    (3, "Оплата по счёту № {num} проведена, ждём отгрузку"),
    (3, "Тендер {num}: {supplier} снизил цену до {money} руб."),
    (4, "Коллеги, созвон по закупке {num} в {hour}:00"),
    (4, "Спасибо, принято"),
    (3, "Документы по закупке {num} загружены, проверьте приложения"),
    (2, "Приёмка на объекте {site} {day} {month}, нужен представитель {supplier}"),
    (0.15, "Партия {gen} {spec} пришла с браком, оформляем рекламацию к {supplier}"),
)


@dataclass(frozen=True, slots=True)
class Message:
    event_id: str
    room_id: str
    sender: str
    ts: int
    body: str


@dataclass(frozen=True, slots=True)
class Corpus:
    messages: list[Message]
    rooms: list[str]
    member_of: list[str]


def make_corpus(seed: int, count: int, rooms: int, member_of: int) -> Corpus:
    rng = random.Random(seed)
    room_ids = [f"!room{i:05d}:localhost" for i in range(rooms)]
    # Some rooms are busy, most are quiet.
    room_weights = [rng.paretovariate(1.2) for _ in room_ids]
    senders = [f"@user{i}:localhost" for i in range(300)]
    weights = [w for w, _ in TEMPLATES]
    templates = [t for _, t in TEMPLATES]
    chosen_rooms = rng.choices(room_ids, room_weights, k=count)
    chosen_templates = rng.choices(templates, weights, k=count)
    messages = []
    ts = 1_700_000_000_000
    for i in range(count):
        ts += rng.randrange(1, 60_000)  # unique and increasing: one order on both sides
        (nom, gen, acc), specs = rng.choice(PRODUCTS)
        body = chosen_templates[i].format(
            nom=nom,
            gen=gen,
            acc=acc,
            spec=rng.choice(specs),
            supplier=rng.choice(SUPPLIERS),
            day=rng.randint(1, 28),
            month=rng.choice(MONTHS),
            qty=rng.choice((rng.randint(1, 60), rng.randint(100, 5000))),
            unit=rng.choice(UNITS),
            num=rng.randint(20000, 29999),
            money=f"{rng.randint(10, 9000) * 1000:,}".replace(",", " "),
            hour=rng.randint(8, 18),
            pct=rng.randint(2, 25),
            site=rng.choice(SITES),
        )
        body = body[0].upper() + body[1:]
        messages.append(Message(f"$e{i:07d}", chosen_rooms[i], rng.choice(senders), ts, body))
    return Corpus(messages, room_ids, rng.sample(room_ids, member_of))


@cache
def _stem(word: str) -> str:
    return stem(word)


def terms(text: str) -> str:
    """`index_terms`, with the stems of a word computed once."""
    return " ".join(_stem(word) for word in words(text[:MAX_TEXT]))


async def fill(db: Database, sqlite: bool, messages: list[Message]) -> float:
    """One transaction: the bulk in one statement per table, the newest through
    SearchIndex.add. Returns the seconds taken."""
    bulk, newest = messages[:-THROUGH_ADD], messages[-THROUGH_ADD:]
    rows = [(m.event_id, m.room_id, m.sender, m.ts, m.body) for m in bulk]
    index = SearchIndex(db)
    start = time.perf_counter()
    conn: Connection
    async with db.acquire() as conn, conn.transaction():
        if sqlite:
            await conn.executemany(
                "INSERT INTO search_entry (event_id, room_id, sender, ts, body) "
                "VALUES ($1, $2, $3, $4, $5)",
                rows,
            )
            stored = await conn.fetch("SELECT seq, body FROM search_entry ORDER BY seq")
            await conn.executemany(
                "INSERT INTO search_fts (rowid, terms) VALUES ($1, $2)",
                [(r["seq"], terms(r["body"])) for r in stored],
            )
        else:
            await conn.copy_records_to_table(
                "search_entry",
                records=rows,
                columns=["event_id", "room_id", "sender", "ts", "body"],
            )
        for m in newest:
            await index.add(m.event_id, m.room_id, m.sender, m.ts, m.body)
    elapsed = time.perf_counter() - start
    if sqlite:
        check = await db.fetch(
            "SELECT f.terms, e.body FROM search_fts f JOIN search_entry e ON e.seq = f.rowid "
            "WHERE e.seq % 97 = 0"
        )
        assert check
        assert all(r["terms"] == index_terms(r["body"]) for r in check)
        assert await db.fetchval("SELECT COUNT(*) FROM search_fts") == len(messages)
    else:
        await db.execute("VACUUM ANALYZE search_entry")  # what autovacuum does after a load
    assert await db.fetchval("SELECT COUNT(*) FROM search_entry") == len(messages)
    return elapsed


Runner = Callable[[str], Awaitable[list[str]]]


@dataclass
class Timings:
    bridge: list[float]
    raw: list[float]


def pct(values: Sequence[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def measure(bridge: Runner, raw: Runner, repeat: int) -> dict[str, Timings]:
    result = {}
    for query in QUERIES:
        expected = await raw(query)
        got = await bridge(query)
        assert got == expected, (query, got, expected)
        for _ in range(WARMUP):
            await bridge(query)
            await raw(query)
        timings = Timings([], [])
        for i in range(repeat):
            # Alternate which goes first, so neither gains from the other's warm caches.
            pair = ((bridge, timings.bridge), (raw, timings.raw))
            for run, into in pair if i % 2 == 0 else reversed(pair):
                start = time.perf_counter()
                await run(query)
                into.append(time.perf_counter() - start)
        result[query] = timings
    return result


async def matches(count: Callable[[str], Awaitable[int]]) -> dict[str, int]:
    return {query: await count(query) for query in QUERIES}


def report(
    title: str, fill_s: float, counts: dict[str, int], timings: dict[str, Timings], repeat: int
) -> None:
    ms = 1000.0
    print(title)
    print(f"fill: {fill_s:.1f} s (one transaction)")
    print(f"{'query':<24}{'matches':>8}{'bridge p50':>12}{'raw p50':>10}{'ratio':>8}")
    for query, t in timings.items():
        b, r = statistics.median(t.bridge), statistics.median(t.raw)
        print(f"{query:<24}{counts[query]:>8}{b * ms:>10.2f}ms{r * ms:>8.2f}ms{b / r:>8.2f}")
    bridge = [x for t in timings.values() for x in t.bridge]
    raw = [x for t in timings.values() for x in t.raw]
    b50, b99, r50, r99 = pct(bridge, 50), pct(bridge, 99), pct(raw, 50), pct(raw, 99)
    print(f"all {len(timings)} queries × {repeat} runs:")
    print(f"raw full-text query:       p50 {r50 * ms:8.2f} ms   p99 {r99 * ms:8.2f} ms")
    print(f"SearchIndex.search:        p50 {b50 * ms:8.2f} ms   p99 {b99 * ms:8.2f} ms")
    print(
        f"ratio bridge/raw:          p50 {b50 / r50:8.2f}      p99 {b99 / r99:8.2f}"
        "      (target p50 ≤ 1.5)"
    )
    print(flush=True)


def heading(name: str, corpus: Corpus) -> str:
    mine = set(corpus.member_of)
    in_mine = sum(m.room_id in mine for m in corpus.messages)
    return (
        f"search of {len(corpus.messages)} messages in {len(corpus.rooms)} rooms, "
        f"a member of {len(mine)} ({in_mine} messages there), {name}"
    )


async def bench_postgres(corpus: Corpus, repeat: int) -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{PG_NAME}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + PG_NAME
    try:
        db = open_database(url)
        await db.start()
        raw_conn = await asyncpg.connect(url)
        try:
            fill_s = await fill(db, False, corpus.messages)
            index = SearchIndex(db)
            rooms = corpus.member_of
            select = await raw_conn.prepare(
                "SELECT event_id, room_id, sender, ts, body FROM search_entry "
                "WHERE room_id = ANY($1::text[]) AND tsv @@ to_tsquery('russian', $2) "
                "ORDER BY ts DESC LIMIT 10"
            )
            prepared = {q: postgres_query(q) for q in QUERIES}

            async def bridge(query: str) -> list[str]:
                return [h.event_id for h in await index.search(rooms, query, 0, LIMIT)]

            async def raw(query: str) -> list[str]:
                return [r["event_id"] for r in await select.fetch(rooms, prepared[query])]

            async def count(query: str) -> int:
                return int(
                    await raw_conn.fetchval(
                        "SELECT COUNT(*) FROM search_entry WHERE room_id = ANY($1::text[]) "
                        "AND tsv @@ to_tsquery('russian', $2)",
                        rooms,
                        prepared[query],
                    )
                )

            timings = await measure(bridge, raw, repeat)
            counts = await matches(count)
        finally:
            await raw_conn.close()
            await db.stop()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        await admin.close()
    report(heading("PostgreSQL", corpus), fill_s, counts, timings, repeat)


async def bench_sqlite(corpus: Corpus, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-search-") as work:
        path = Path(work) / "bridge.db"
        db = open_database(f"sqlite:{path}")
        await db.start()
        raw_conn = await aiosqlite.connect(path)
        try:
            fill_s = await fill(db, True, corpus.messages)
            index = SearchIndex(db)
            rooms = corpus.member_of
            # The stems' matches in the person's rooms, one ? per room.
            found = (
                "FROM search_fts f JOIN search_entry e ON e.seq = f.rowid "
                f"WHERE search_fts MATCH ? AND e.room_id IN ({', '.join('?' * len(rooms))})"
            )
            columns = "e.event_id, e.room_id, e.sender, e.ts, e.body"
            select = f"SELECT {columns} {found} ORDER BY e.ts DESC LIMIT 10"
            prepared = {q: fts5_query(q) for q in QUERIES}

            def params(query: str) -> tuple[str | None, ...]:
                return (prepared[query], *rooms)

            async def bridge(query: str) -> list[str]:
                return [h.event_id for h in await index.search(rooms, query, 0, LIMIT)]

            async def raw(query: str) -> list[str]:
                return [r[0] for r in await raw_conn.execute_fetchall(select, params(query))]

            async def count(query: str) -> int:
                sql = f"SELECT COUNT(*) {found}"
                rows = list(await raw_conn.execute_fetchall(sql, params(query)))
                return int(rows[0][0])

            timings = await measure(bridge, raw, repeat)
            counts = await matches(count)
        finally:
            await raw_conn.close()
            await db.stop()
    report(heading("SQLite", corpus), fill_s, counts, timings, repeat)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rooms", type=int, default=1_000)
    parser.add_argument("--member-of", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    # The fill's bulk statements take seconds by design; the log would only say so.
    logging.getLogger("bridge.db").setLevel(logging.ERROR)
    corpus = make_corpus(args.seed, args.messages, args.rooms, args.member_of)
    if args.db in ("postgres", "both"):
        await bench_postgres(corpus, args.repeat)
    if args.db in ("sqlite", "both"):
        await bench_sqlite(corpus, args.repeat)


if __name__ == "__main__":
    asyncio.run(main())
