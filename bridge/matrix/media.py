"""File bytes in and out of the homeserver: media uploads as the bot and authenticated
downloads, each read with a size limit, never buffering more than one byte past it."""

from __future__ import annotations

import aiohttp
from mautrix.client import ClientAPI

from ..domain.registry import parse_mxc

_CHUNK = 64 * 1024
# The homeserver is close by, but a large file takes its time.
_DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=600, sock_connect=10, sock_read=60)


class TooLarge(Exception):
    """More bytes than allowed; `size` is the announced size when there was one."""

    def __init__(self, size: int | None, limit: int) -> None:
        shown = f"{size} bytes" if size is not None else "more bytes"
        super().__init__(f"the file is {shown}, over the limit of {limit}")
        self.size = size
        self.limit = limit


class MediaMissing(Exception):
    """The homeserver has no such media (a made-up or foreign `mxc://` URI)."""


async def read_limited(
    stream: aiohttp.StreamReader, limit: int, announced: int | None = None
) -> bytes:
    """The whole body if it is at most `limit` bytes; TooLarge as soon as it is not."""
    if announced is not None and announced > limit:
        raise TooLarge(announced, limit)
    data = bytearray()
    while True:
        # Ask for no more than one byte past the limit: that byte is enough to refuse.
        chunk = await stream.read(min(_CHUNK, limit + 1 - len(data)))
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            raise TooLarge(None, limit)


async def upload(client: ClientAPI, data: bytes, mime_type: str, filename: str) -> str:
    """Uploads bytes as the bot (`POST /_matrix/media/v3/upload`); returns the `mxc://` URI."""
    uri = await client.upload_media(data, mime_type=mime_type, filename=filename, size=len(data))
    return str(uri)


async def download(client: ClientAPI, mxc: str, limit: int) -> bytes:
    """The bytes behind an `mxc://` URI, through the authenticated v1 media API as the bot
    (the legacy unauthenticated download is off on current homeservers)."""
    parsed = parse_mxc(mxc)
    if parsed is None:
        raise MediaMissing(f"{mxc!r} is not an mxc:// URI")
    server, media_id = parsed
    url = client.api.base_url / "_matrix/client/v1/media/download" / server / media_id
    headers = {"Authorization": f"Bearer {client.api.token}"}
    async with client.api.session.get(url, headers=headers, timeout=_DOWNLOAD_TIMEOUT) as resp:
        if resp.status == 404:
            raise MediaMissing(f"the homeserver has no media {mxc}")
        resp.raise_for_status()
        return await read_limited(resp.content, limit, resp.content_length)
