"""Guided requests (заявки): `заявка` starts a conversation that asks for each configured field,
shows a summary to send or drop, sends `request.submitted` once, and posts the procurement
system's answer (`request.accepted` / `request.rejected`) where the request was made."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from ..db.store import Store
from ..db.webhooks import StoredWebhook
from ..domain.answers import (
    button,
    phrase_card,
    question_card,
    request_answer_card,
    say,
    summary_card,
)
from ..domain.commands import Command, ParsedCommand
from ..domain.errors import Refused
from ..domain.locale import Locale
from ..domain.request_form import (
    BadAnswer,
    FormField,
    RequestAnswer,
    check_answer,
    next_field,
    parse_request_accepted,
    parse_request_rejected,
    request_submitted_payload,
)
from ..domain.webhooks import ParsedWebhook
from ..feature import Answer, Asker, Button, Feature, Reply
from ..retry import Permanent
from ..worker import now_ms
from .replies import Replier

log = logging.getLogger("bridge.requests")

FILLING = "request"
ANSWER = "request.answer"
SEND = "request.send"
DROP = "request.drop"
_SEND_WORDS = frozenset({"отправить", "send"})


class RequestDesk:
    def __init__(
        self, store: Store, replier: Replier, fields: Sequence[FormField], locale: Locale
    ) -> None:
        self.store = store
        self.replier = replier
        self.fields = tuple(fields)
        self.locale = locale

    def feature(self) -> Feature:
        return Feature(
            name="requests",
            webhooks={"request.accepted": self.answered, "request.rejected": self.answered},
            admissions=(self.admit,),
            commands={Command.REQUEST: self.start},
            actions={ANSWER: self.on_option, SEND: self.on_send, DROP: self.on_drop},
            dialogs={FILLING: self.on_text},
        )

    # The conversation -----------------------------------------------------------------------

    async def start(self, asker: Asker, _: ParsedCommand) -> Answer:
        if not self.fields:
            return phrase_card("request_off", self.locale)
        state: dict[str, Any] = {
            "request_id": f"req_{uuid.uuid4().hex}",
            "procurement_id": asker.room.procurement_id if asker.room else None,
            "answers": {},
        }
        await self._save(asker, state)
        return self._ask(asker, state, None)

    async def on_text(self, asker: Asker, text: str, state: Mapping[str, Any]) -> Answer:
        if state.get("summary"):
            if text.strip().casefold() in _SEND_WORDS:
                return await self._send(asker, state)
            return self._summary(asker, state)
        return await self._answer(asker, state, text)

    async def on_option(self, asker: Asker, action: Mapping[str, Any]) -> Answer:
        state = await self._state(asker, action)
        if state is None or state.get("summary"):
            return None
        field = next_field(self.fields, state["answers"])
        if field is None or field.name != action.get("field"):
            return None  # an option of a question answered since (typed)
        return await self._answer(asker, state, str(action["value"]))

    async def on_send(self, asker: Asker, action: Mapping[str, Any]) -> Answer:
        state = await self._state(asker, action)
        if state is None or not state.get("summary"):
            return phrase_card("confirm_expired", self.locale)
        return await self._send(asker, state)

    async def on_drop(self, asker: Asker, action: Mapping[str, Any]) -> Answer:
        if await self._state(asker, action) is not None:
            await self.store.dialogs.end(asker.room_id, asker.user)
        return phrase_card("cancelled", self.locale)

    async def _state(self, asker: Asker, action: Mapping[str, Any]) -> dict[str, Any] | None:
        """The conversation a button belongs to, if it is still the one under way."""
        dialog = await self.store.dialogs.get(asker.room_id, asker.user)
        if dialog is None or dialog.kind != FILLING:
            return None
        if dialog.state.get("request_id") != action.get("request_id"):
            return None
        return dialog.state

    async def _answer(self, asker: Asker, state: Mapping[str, Any], text: str) -> Answer:
        answers = dict(state["answers"])
        field = next_field(self.fields, answers)
        if field is None:
            return self._summary(asker, state)
        try:
            answers[field.name] = check_answer(field, text, datetime.now(UTC).date())
        except BadAnswer as bad:
            return self._ask(asker, state, say(self.locale, bad.reason, **bad.values))
        moved = {**state, "answers": answers}
        if next_field(self.fields, answers) is None:
            moved["summary"] = True
            await self._save(asker, moved)
            return self._summary(asker, moved)
        await self._save(asker, moved)
        return self._ask(asker, moved, None)

    def _ask(self, asker: Asker, state: Mapping[str, Any], problem: str | None) -> Reply:
        answers = state["answers"]
        field = next_field(self.fields, answers)
        assert field is not None
        step = len(answers) + 1
        options = tuple(
            Button(
                f"{i}. {option}",
                self._action(ANSWER, state, field=field.name, value=option),
                asker.user,
            )
            for i, option in enumerate(field.options, 1)
        )
        return Reply(
            question_card(field, step, len(self.fields), problem, self.locale),
            (
                *options,
                Button(button(self.locale, "cancel"), self._action(DROP, state), asker.user),
            ),
            once=True,
        )

    def _summary(self, asker: Asker, state: Mapping[str, Any]) -> Reply:
        return Reply(
            summary_card(self.fields, state["answers"], self.locale),
            (
                self._button("send", SEND, state, asker),
                self._button("cancel", DROP, state, asker),
            ),
            once=True,
        )

    async def _send(self, asker: Asker, state: Mapping[str, Any]) -> Answer:
        """The request to the procurement system, once: its id was fixed when it began."""
        request_id = str(state["request_id"])
        procurement_id = state.get("procurement_id")
        payload = request_submitted_payload(
            request_id,
            asker.user,
            procurement_id,
            self.fields,
            state["answers"],
            datetime.now(UTC).isoformat(),
        )
        now = now_ms()
        async with self.store.transaction():
            await self.store.requests.add(
                request_id, asker.user, asker.room_id, procurement_id, state["answers"], now
            )
            await self.store.callbacks.enqueue(
                f"request.submitted:{request_id}",
                procurement_id,
                "request.submitted",
                payload,
                now,
            )
            await self.store.dialogs.end(asker.room_id, asker.user)
        log.info("Request %s by %s sent to the procurement system", request_id, asker.user)
        return phrase_card("request_sent", self.locale)

    async def _save(self, asker: Asker, state: Mapping[str, Any]) -> None:
        await self.store.dialogs.put(asker.room_id, asker.user, FILLING, state, now_ms())

    @staticmethod
    def _action(kind: str, state: Mapping[str, Any], **values: Any) -> dict[str, Any]:
        return {"kind": kind, "request_id": state["request_id"], **values}

    def _button(self, key: str, kind: str, state: Mapping[str, Any], asker: Asker) -> Button:
        return Button(button(self.locale, key), self._action(kind, state), asker.user)

    # The procurement system's answer ---------------------------------------------------------

    async def admit(self, webhook: ParsedWebhook) -> None:
        """An answer to a request the bridge never sent, or a second, different answer, is
        refused at once (409)."""
        if not isinstance(webhook.value, RequestAnswer):
            return
        answer = webhook.value
        stored = await self.store.requests.get(answer.request_id)
        if stored is None:
            raise Refused(f"no request {answer.request_id}", "ORG_PROCUREMENT_REQUEST_UNKNOWN")
        status = "accepted" if answer.accepted else "rejected"
        if stored.status not in ("submitted", status) or (
            stored.status == status and stored.number != answer.number
        ):
            raise Refused(
                f"request {answer.request_id} was answered already ({stored.status})",
                "ORG_PROCUREMENT_REQUEST_ANSWERED",
            )

    async def answered(self, webhook: StoredWebhook) -> None:
        parse = (
            parse_request_accepted
            if webhook.type == "request.accepted"
            else parse_request_rejected
        )
        answer = parse(webhook.data)
        stored = await self.store.requests.get(answer.request_id)
        if stored is None:
            raise Permanent(f"no request {answer.request_id}")
        status = "accepted" if answer.accepted else "rejected"
        card = request_answer_card(
            answer.accepted, answer.number, answer.reason, self.fields, stored.fields, self.locale
        )
        async with self.store.transaction():
            await self.store.requests.answer(
                answer.request_id, status, answer.number, answer.reason, now_ms()
            )
            await self.replier.post(stored.room_id, f"request-answer:{answer.request_id}", card)
