"""The document registry: files posted by members and by the bridge, downloads through the API,
`document.uploaded` out, read receipts in, and what one supplier can never see of another's."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from mautrix.types import ContentURI

from bridge.core import BridgeCore
from bridge.localsynapse import free_port
from bridge.matrix.documents import DocumentKeeper

from ..cast import Cast, make_cast
from ..conftest import Deployment, StartBridge
from ..erp import ERP
from ..matrix_user import Event, MatrixUser
from ..receiver import Receiver
from ..unit.test_openapi import schema_validator
from ..waiting import wait_for

BOT = "@procbot:localhost"
MAX_BYTES = 64 * 1024


@pytest.fixture
async def documents_bridge(
    bridge_with: StartBridge, receiver: Receiver, file_server: tuple[str, dict[str, bytes]]
) -> BridgeCore:
    files_url, _ = file_server
    return await bridge_with(
        callbacks__url=receiver.url,
        documents__max_bytes=MAX_BYTES,
        # The procurement system's file store, on this machine's loopback for the tests.
        documents__fetch={"allow": [files_url + "/"], "allow_networks": ["127.0.0.1/32"]},
        # Retries are the point of some tests: do not wait minutes of backoff for them.
        bridge__max_backoff_seconds=1,
    )


def keeper_of(core: BridgeCore) -> DocumentKeeper:
    return core.documents


# --- helpers ---------------------------------------------------------------------------


async def join(user: MatrixUser, key: str) -> str:
    async def joined() -> str | None:
        await user.accept_invites(0)
        return (await user.rooms_by_key()).get(key)

    return await wait_for(joined, what=f"{user.user_id} in {key}")


async def post_file(
    user: MatrixUser, room_id: str, filename: str, data: bytes, mime: str = "application/pdf"
) -> str:
    """What Element does with an attachment: upload it, then send an m.file message."""
    mxc = await user.client.upload_media(data, mime_type=mime, filename=filename)
    content = {
        "msgtype": "m.file",
        "body": filename,
        "filename": filename,
        "url": str(mxc),
        "info": {"mimetype": mime, "size": len(data)},
    }
    return await user.send_event(room_id, "m.room.message", content)


async def ask(user: MatrixUser, room_id: str, text: str) -> str:
    """Sends a command and returns the bot's reply to it."""
    asked = await user.send_text(room_id, text)
    reply = await user.wait_for_event(
        room_id,
        lambda e: (
            e["sender"] == BOT
            and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
            == asked
        ),
    )
    return str(reply["content"]["body"])


async def registry(erp: ERP, cast: Cast) -> list[dict[str, Any]]:
    status, view = await erp.get(f"/api/v1/procurements/{cast.procurement_id}/documents")
    assert status == 200, view
    schema_validator("DocumentList").validate(view)
    return list(view["documents"])


async def entry_for(erp: ERP, cast: Cast, event_id: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        return next((d for d in await registry(erp, cast) if d["event_id"] == event_id), None)

    return await wait_for(found, what=f"{event_id} in the registry")


async def download(
    deployment: Deployment, path: str, token: str | None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(deployment.bridge_url + path, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


def uploaded_callbacks(receiver: Receiver, event_id: str) -> list[dict[str, Any]]:
    return [
        r.body["data"]
        for r in receiver.delivered()
        if r.body["type"] == "document.uploaded" and r.body["data"]["event_id"] == event_id
    ]


async def dead_letter(erp: ERP, webhook_id: str) -> str:
    async def parked() -> str | None:
        status, letters = await erp.get("/api/v1/dead-letters")
        assert status == 200
        # A document's fetch is parked in its own queue, under the webhook's id.
        found = [d for q in ("webhooks", "fetches") for d in letters[q] if d["name"] == webhook_id]
        return str(found[0]["last_error"]) if found else None

    return await wait_for(parked, what=f"{webhook_id} parked")


def bot_files(user: MatrixUser, room_id: str, filename: str) -> list[Event]:
    return [
        e
        for e in user.timeline.get(room_id, [])
        if e["sender"] == BOT and e["content"].get("filename") == filename
    ]


@pytest.fixture
async def file_server() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """The procurement system's file store: GET /files/<name> serves what the test puts in."""
    files: dict[str, bytes] = {}

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            return web.Response(status=404)
        return web.Response(body=files[name], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/files", files
    await runner.cleanup()


# --- a member's upload -----------------------------------------------------------------


async def test_a_supplier_upload_is_registered_downloadable_reported_once_and_confined(
    documents_bridge: BridgeCore,
    erp: ERP,
    receiver: Receiver,
    deployment: Deployment,
    user_factory: Any,
) -> None:
    cast = await make_cast(user_factory, suppliers=2, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    torgprofi, stalinvest = cast.suppliers
    kirillov, rival = torgprofi.members[0], stalinvest.members[0]
    room_id = await join(kirillov, f"supplier:{torgprofi.id}")
    rival_room = await join(rival, f"supplier:{stalinvest.id}")
    data = os.urandom(20_000)
    filename = "Коммерческое предложение ТоргПрофи.pdf"
    event_id = await post_file(kirillov, room_id, filename, data)

    entry = await entry_for(erp, cast, event_id)
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["size"] == len(data)
    assert entry["filename"] == filename
    assert entry["mime_type"] == "application/pdf"
    assert entry["uploader"] == kirillov.user_id
    assert entry["room_key"] == f"supplier:{torgprofi.id}"
    assert entry["room_id"] == room_id
    assert entry["source"] == "user"

    status, headers, body = await download(deployment, entry["content"], deployment.api_token)
    assert status == 200
    assert body == data
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Length"] == str(len(data))
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''%D0%9A%D0%BE%D0%BC" in headers["Content-Disposition"]
    assert (await download(deployment, entry["content"], None))[0] == 401
    assert (await download(deployment, entry["content"], "wrong-token-1234567"))[0] == 401
    missing = await download(deployment, "/api/v1/documents/nope/content", deployment.api_token)
    assert missing[0] == 404
    assert (await erp.get("/api/v1/procurements/no-such/documents"))[0] == 404

    callbacks = await wait_for(lambda: uploaded_callbacks(receiver, event_id), what="callback")
    (callback,) = callbacks
    schema_validator("DocumentUploaded").validate(callback)
    assert callback["document_id"] == entry["doc_id"]
    assert callback["sha256"] == entry["sha256"]
    assert callback["uploader"] == kirillov.user_id
    assert callback["procurement_id"] == cast.procurement_id

    # Processing the same event again (a crash before it was marked done) changes nothing.
    room = await documents_bridge.rooms.by_room_id(room_id)
    event = await documents_bridge.inbox.get_event(event_id)
    assert room is not None
    assert event is not None
    await keeper_of(documents_bridge).on_event(room, event)
    await wait_for(
        lambda: documents_bridge.callbacks.status_of(f"document.uploaded:{event_id}"),
        what="the callback's row",
    )
    assert await documents_bridge.callbacks.depth() == 0
    assert len(uploaded_callbacks(receiver, event_id)) == 1
    assert [d["event_id"] for d in await registry(erp, cast)] == [event_id]

    # The uploader sees it in their room's list …
    listed = await ask(kirillov, room_id, "документы")
    assert filename in listed
    # … and another supplier, asking in theirs, learns nothing of it.
    for question in ("документы", "documents", "кто видел Коммерческое", "seen"):
        answer = await ask(rival, rival_room, question)
        assert "ТоргПрофи" not in answer
        assert kirillov.user_id not in answer
        assert entry["sha256"] not in answer
        assert "mxc://" not in answer
    assert "не найден" in await ask(rival, rival_room, "кто видел Коммерческое")
    # A file whose name reads like a command is still a file.
    named = await post_file(kirillov, room_id, "Документы.zip", b"zip", "application/zip")
    assert (await entry_for(erp, cast, named))["filename"] == "Документы.zip"


# --- read receipts ---------------------------------------------------------------------


async def test_read_receipts_say_who_has_seen_a_document(
    documents_bridge: BridgeCore, erp: ERP, user_factory: Any
) -> None:
    cast = await make_cast(user_factory, suppliers=1, members=2, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    supplier = cast.suppliers[0]
    key = f"supplier:{supplier.id}"
    kirillov, colleague = supplier.members
    manager = cast.manager
    room_id = await join(kirillov, key)
    await join(colleague, key)
    await join(manager, key)
    event_id = await post_file(kirillov, room_id, "Спецификация К987.xlsx", b"spec" * 100)
    entry = await entry_for(erp, cast, event_id)
    assert entry["seen_by"] == []

    # The manager opens it (a public receipt); the colleague reads privately.
    await manager.request(
        "POST", f"/_matrix/client/v3/rooms/{room_id}/receipt/m.read/{event_id}", {}
    )
    await colleague.request(
        "POST", f"/_matrix/client/v3/rooms/{room_id}/receipt/m.read.private/{event_id}", {}
    )

    async def seen() -> list[dict[str, Any]]:
        return list((await entry_for(erp, cast, event_id))["seen_by"])

    seen_by = await wait_for(seen, what="the manager's receipt")
    assert [s["user"] for s in seen_by] == [manager.user_id]

    manager_name = manager.user_id[1:].split(":")[0]
    colleague_name = colleague.user_id[1:].split(":")[0]
    answer = await ask(kirillov, room_id, "кто видел к987")
    assert "Кто видел: Спецификация К987.xlsx" in answer
    assert manager_name in answer
    assert colleague_name not in answer
    assert "По отметкам о прочтении" in answer
    assert "скрытые отметки о прочтении не видны" in answer
    latest = await ask(kirillov, room_id, "seen")  # no name: the latest document
    assert "Спецификация К987.xlsx" in latest
    assert manager_name in latest


# --- document.published ----------------------------------------------------------------


async def test_published_documents_are_posted_once_and_registered(
    documents_bridge: BridgeCore,
    erp: ERP,
    receiver: Receiver,
    deployment: Deployment,
    user_factory: Any,
    file_server: tuple[str, dict[str, bytes]],
) -> None:
    files_url, files = file_server
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    supplier = cast.suppliers[0]
    key = f"supplier:{supplier.id}"
    kirillov = supplier.members[0]
    room_id = await join(kirillov, key)

    inline = os.urandom(5000)
    webhook_id = f"msg_{uuid.uuid4().hex}"
    data = {
        "procurement_id": cast.procurement_id,
        "room": key,
        "document": {
            "type": "ДС к договору",
            "filename": "ДС-3.pdf",
            "content_base64": base64.b64encode(inline).decode(),
            "sha256": hashlib.sha256(inline).hexdigest().upper(),
        },
        "caption": "Дополнительное соглашение № 3",
    }
    assert (await erp.send("document.published", data, webhook_id))[0] == 202
    by_url = os.urandom(7000)
    files["spec.xlsx"] = by_url
    url_data = {
        "procurement_id": cast.procurement_id,
        "room": key,
        "document": {
            "filename": "spec.xlsx",
            "url": f"{files_url}/spec.xlsx",
            "sha256": hashlib.sha256(by_url).hexdigest(),
        },
    }
    assert (await erp.send("document.published", url_data))[0] == 202

    posted = await kirillov.wait_for_event(
        room_id, lambda e: e["sender"] == BOT and e["content"].get("filename") == "ДС-3.pdf"
    )
    content = posted["content"]
    assert content["msgtype"] == "m.file"
    assert content["body"] == "Дополнительное соглашение № 3"
    assert content["info"] == {"mimetype": "application/pdf", "size": len(inline)}
    # The member downloads it as Element would, through the authenticated media API.
    assert await kirillov.client.download_media(ContentURI(content["url"])) == inline
    fetched = await kirillov.wait_for_event(
        room_id, lambda e: e["sender"] == BOT and e["content"].get("filename") == "spec.xlsx"
    )
    assert await kirillov.client.download_media(ContentURI(fetched["content"]["url"])) == by_url
    assert fetched["content"]["body"] == "spec.xlsx"

    # The same webhook again: answered, and nothing posted twice.
    status, answer = await erp.send("document.published", data, webhook_id)
    assert (status, answer["status"]) == (202, "duplicate")
    entries = {d["filename"]: d for d in await registry(erp, cast)}
    assert set(entries) == {"ДС-3.pdf", "spec.xlsx"}
    for entry, event, raw in (
        (entries["ДС-3.pdf"], posted, inline),
        (entries["spec.xlsx"], fetched, by_url),
    ):
        assert entry["source"] == "bridge"
        assert entry["uploader"] == BOT
        assert entry["sha256"] == hashlib.sha256(raw).hexdigest()
        assert entry["event_id"] == event["event_id"]
        assert (await download(deployment, entry["content"], deployment.api_token))[2] == raw
    assert entries["ДС-3.pdf"]["caption"] == "Дополнительное соглашение № 3"
    await kirillov.sync()
    assert len(bot_files(kirillov, room_id, "ДС-3.pdf")) == 1
    # The bridge's own posts are not news to the procurement system.
    assert not [r for r in receiver.requests if r.body["type"] == "document.uploaded"]
    assert "ДС-3.pdf" in await ask(kirillov, room_id, "документы")


async def test_published_documents_that_break_the_rules_are_refused(
    documents_bridge: BridgeCore,
    erp: ERP,
    user_factory: Any,
    file_server: tuple[str, dict[str, bytes]],
) -> None:
    files_url, files = file_server
    cast = await make_cast(user_factory, suppliers=1, commission=0)
    await erp.upsert(cast.snapshot("offers"))
    key = f"supplier:{cast.suppliers[0].id}"
    kirillov = cast.suppliers[0].members[0]
    room_id = await join(kirillov, key)

    def published(document: dict[str, Any], room: str = key) -> dict[str, Any]:
        return {"procurement_id": cast.procurement_id, "room": room, "document": document}

    # Inline bytes that do not match their hash: refused at the edge.
    status, error = await erp.send(
        "document.published",
        published({"filename": "a.pdf", "content_base64": "YWJj", "sha256": "0" * 64}),
    )
    assert status == 400
    assert error["errcode"] == "ORG_PROCUREMENT_SHA256_MISMATCH"
    assert error["path"] == "data.document.sha256"

    # What only the worker can know is parked with its reason, and nothing is posted.
    files["big.bin"] = b"x" * (MAX_BYTES + 1)
    files["spec.pdf"] = b"the real specification"
    refused = {
        "over documents.max_bytes": published(
            {"filename": "big.bin", "url": f"{files_url}/big.bin"}
        ),
        "SHA-256": published(
            {"filename": "spec.pdf", "url": f"{files_url}/spec.pdf", "sha256": "1" * 64}
        ),
        "404": published({"filename": "gone.pdf", "url": f"{files_url}/gone.pdf"}),
        "over the limit": published(
            {
                "filename": "inline.bin",
                "content_base64": base64.b64encode(b"y" * (MAX_BYTES + 1)).decode(),
            }
        ),
        "has no room": published(
            {"filename": "a.pdf", "content_base64": "YWJj"}, room="supplier:nobody"
        ),
    }
    # The rooms have converged: a room the procurement does not have will not come.
    await wait_for(
        lambda: documents_bridge.db.fetchval(
            "SELECT 1 FROM procurement WHERE id=$1 AND status='done'", cast.procurement_id
        ),
        what="the rooms converged",
    )
    for reason, data in refused.items():
        webhook_id = f"msg_{uuid.uuid4().hex}"
        assert (await erp.send("document.published", data, webhook_id))[0] == 202
        assert reason in await dead_letter(erp, webhook_id)
    assert await registry(erp, cast) == []
    await kirillov.sync()
    assert not [
        e
        for e in kirillov.timeline.get(room_id, [])
        if e["sender"] == BOT and e["content"].get("msgtype") == "m.file"
    ]

    # A member's file over the limit is not kept, and the room is told so.
    await post_file(kirillov, room_id, "scan.tiff", b"z" * (MAX_BYTES + 1), "image/tiff")
    notice = await kirillov.wait_for_event(
        room_id, lambda e: e["sender"] == BOT and "scan.tiff" in e["content"].get("body", "")
    )
    assert "не внесён в реестр документов" in notice["content"]["body"]
    assert await registry(erp, cast) == []
