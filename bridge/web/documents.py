"""The document registry's REST routes: a procurement's documents and a document's bytes."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from ..domain.registry import OCTET_STREAM
from .api import refuse_without_token
from .errors import error_response

if TYPE_CHECKING:
    from ..matrix.documents import DocumentKeeper

DOCUMENTS_PATH = "/api/v1/procurements/{id}/documents"
CONTENT_PATH = "/api/v1/documents/{doc_id}/content"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def document_routes(
    keeper: DocumentKeeper, tokens: Sequence[str]
) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) for `app.router.add_route`."""

    async def list_documents(request: web.Request) -> web.StreamResponse:
        if refusal := refuse_without_token(request, tokens):
            return refusal
        procurement_id = request.match_info["id"]
        view = await keeper.list_view(procurement_id)
        if view is None:
            return error_response(404, "M_NOT_FOUND", f"No procurement {procurement_id!r}", "id")
        return web.json_response(view, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))

    async def document_content(request: web.Request) -> web.StreamResponse:
        if refusal := refuse_without_token(request, tokens):
            return refusal
        doc_id = request.match_info["doc_id"]
        found = await keeper.content(doc_id)
        if found is None:
            return error_response(404, "M_NOT_FOUND", f"No document {doc_id!r}", "doc_id")
        document, data = found
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        return web.Response(
            body=data,
            headers={
                "Content-Type": document.mime_type or OCTET_STREAM,
                "Content-Disposition": content_disposition(document.filename),
                # The type came from whoever posted the file: never let a browser guess.
                "X-Content-Type-Options": "nosniff",
                "Repr-Digest": f"sha-256=:{digest}:",
            },
        )

    return [("GET", DOCUMENTS_PATH, list_documents), ("GET", CONTENT_PATH, document_content)]


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real one in RFC 5987 `filename*`."""
    fallback = "".join(
        ch if " " <= ch < "\x7f" and ch not in '"\\/' else "_" for ch in filename
    ).strip()
    return f"attachment; filename=\"{fallback or 'document'}\"; filename*=UTF-8''" + quote(
        filename, safe=""
    )
