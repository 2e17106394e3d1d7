"""The bot's client-server API connection, as the application service."""

from __future__ import annotations

import contextlib
import logging

import aiohttp
from mautrix.api import Method, Path
from mautrix.appservice import AppServiceAPI
from mautrix.client import ClientAPI
from mautrix.errors import MatrixConnectionError, MatrixRequestError, MUnknownToken, MUserInUse
from mautrix.types import UserID

log = logging.getLogger("bridge.matrix")


class HomeserverProblem(Exception):
    """The homeserver is unreachable or refuses the bridge; the message says what to check."""


def make_client(
    homeserver: str, as_token: str, bot_mxid: str, session: aiohttp.ClientSession
) -> ClientAPI:
    api = AppServiceAPI(
        base_url=homeserver,
        bot_mxid=UserID(bot_mxid),
        token=as_token,
        log=logging.getLogger("bridge.matrix.api"),  # type: ignore[arg-type]
        client_session=session,
        # One retry mechanism: the durable queues, which know what is safe to repeat.
        default_retry_count=0,
    )
    return ClientAPI(mxid=UserID(bot_mxid), api=api)


async def check_homeserver(client: ClientAPI, address: str) -> None:
    """Fails with a clear message if the homeserver is down or does not know our as_token."""
    try:
        await client.versions()
    except (MatrixConnectionError, aiohttp.ClientError, TimeoutError, OSError) as e:
        raise HomeserverProblem(
            f"homeserver.address: cannot reach the homeserver at {address} ({e})"
        ) from None
    try:
        await client.whoami()
    except MUnknownToken:
        raise HomeserverProblem(
            "appservice.as_token: the homeserver does not accept it; is registration.yaml "
            "listed in the homeserver's app_service_config_files, and was it restarted?"
        ) from None


async def ensure_bot(client: ClientAPI, displayname: str) -> None:
    """Registers the bot user (idempotent) and sets its display name."""
    localpart = client.mxid[1:].split(":", 1)[0]
    with contextlib.suppress(MUserInUse):
        await client.api.request(
            Method.POST,
            Path.v3.register,
            {"username": localpart, "type": "m.login.application_service", "inhibit_login": True},
        )
    try:
        if await client.get_displayname(client.mxid) != displayname:
            await client.set_displayname(displayname)
    except MatrixRequestError as e:
        log.warning("Could not set the bot's display name: %s", e)
