"""The bot's words in Russian and English: labels, stage and room names, refusals, help."""

from __future__ import annotations

from .approval import RefusalCode
from .locale import Locale

WORDS: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "vote": "Голосование",
        "vote_running": "Идёт голосование",
        "vote_done": "Голосование завершено",
        "vote_cancelled": "Голосование отменено",
        "supplier": "Поставщик",
        "delivery_term": "Срок поставки",
        "delivery_date": "Дата поставки",
        "cost_without_vat": "Стоимость без НДС",
        "cost_with_vat": "Стоимость с НДС",
        "document": "Документ",
        "options": "Варианты",
        "quorum": "Кворум",
        "voters": "Голосующих",
        "until": "Срок голосования",
        "secret": "Голосование тайное: результаты видны после завершения",
        "open": "Голосование открытое: результаты видны сразу",
        "quorum_line": "кворум {quorum} — {state}",
        "reached": "набран",
        "not_reached": "не набран",
        "results": "Итоги",
        "outcome": "Итог",
        "no_quorum": "решение не принято — кворум не набран",
        "tie": "решение не принято — голоса разделились поровну",
        "closed": "Завершено",
        "closed_deadline": "по истечении срока",
        "closed_all_voted": "проголосовали все участники",
        "closed_cancelled": "отменено",
        "reason": "Причина",
        "how_to_vote": "Ответьте в опросе ниже; учитывается последний ответ до завершения.",
        "approval": "Согласование",
        "series": "Серия",
        "valid_until": "Срок действия",
        "file": "Файл",
        "mode": "Тип согласования",
        "sequential": "Последовательное",
        "parallel": "Параллельное",
        "group": "Группа",
        "signature_required": "Требуется электронная подпись",
        "deadline": "Срок согласования",
        "participants": "Участники",
        "approved": "согласовано",
        "rejected": "отклонено",
        "waiting": "ожидается решение",
        "queued": "ожидает очереди",
        "not_needed": "решение не потребовалось",
        "signed": "ЭП проверена",
        "current": "Сейчас решение за",
        "how_to_decide": "Согласовываете? Кнопки под карточкой: «✅ Да» — согласовать, «❌ Нет» — "
        "отклонить (спрошу причину). Или напишите «согласовать [комментарий]» / «отклонить "
        "<причина>».",
        "outcome_approved": "согласовано ✅",
        "outcome_rejected": "отклонено ❌",
        "outcome_cancelled": "согласование отменено",
        "created": "Системный помощник: чат создан",
        "procurement": "Закупка",
        "object": "Объект",
        "stage": "Этап",
        "room": "Чат",
        "purpose": "Для чего",
        "link": "Закупка в системе",
        "no_deletion": "Сообщения и файлы не удаляются: переписка сохраняется в истории закупки.",
        "help_hint": "Команды помощника: напишите «помощь».",
        "refused": "Не получилось",
        "invalid": "Неверная команда",
        "signature_ok": "Подпись проверена ✅",
        "signature_bad": "Подпись не принята ❌",
        "signature_signer": "Подписант",
        "signature_check": "Не пройдена проверка",
        "signature_next": "Чтобы согласовать, напишите «согласовать [комментарий]» "
        "или ответьте в опросе.",
        "check_parse": "формат файла подписи (нужна откреплённая подпись CMS .p7s/.sig)",
        "check_digest": "подпись сделана для другого файла",
        "check_signature": "подпись не сходится с сертификатом",
        "check_certificate_validity": "срок действия сертификата",
        "check_chain": "цепочка доверия сертификата",
        "check_key_usage": "назначение ключа сертификата",
        "check_identity": "сертификат не принадлежит согласующему",
        "approve_option": "Согласовать",
        "reject_option": "Отклонить",
        "open_votes": "Открытые голосования",
        "no_open_votes": "Открытых голосований в этом чате нет",
        "not_answered": "Ещё не ответили",
        "incident_redaction": "Удалено сообщение",
        "incident_tombstone": "Попытка заменить чат новым",
        "incident_shutdown": "Чат закрыт администратором сервера",
        "incident_by": "Кто",
        "incident_kept": "Оригинал сохранён в журнале системного помощника; "
        "история закупки не теряется.",
        "documents": "Документы чата",
        "no_documents": "В этом чате пока нет документов",
        "documents_note": "Файлы хранятся в реестре документов закупки.",
        "seen": "Кто видел",
        "seen_nobody": "Пока никто не отметил прочтение",
        "seen_note": "По отметкам о прочтении: скрытые отметки о прочтении не видны, "
        "поэтому список может быть неполным.",
        "uploaded_by": "Загрузил",
        "document_not_found": "Документ не найден в этом чате",
        "document_too_large": "Файл не внесён в реестр документов",
        "document_limit": "Размер файла {size}, а допустимо не больше {limit}.",
        "more_items": "… и ещё {count}",
        "earlier_items": "… и ещё {count} раньше",
        "message_cut": "… (сообщение сокращено)",
    },
    Locale.EN: {
        "vote": "Vote",
        "vote_running": "Vote in progress",
        "vote_done": "Vote closed",
        "vote_cancelled": "Vote cancelled",
        "supplier": "Supplier",
        "delivery_term": "Delivery term",
        "delivery_date": "Delivery date",
        "cost_without_vat": "Cost without VAT",
        "cost_with_vat": "Cost with VAT",
        "document": "Document",
        "options": "Options",
        "quorum": "Quorum",
        "voters": "Voters",
        "until": "Voting closes",
        "secret": "Secret ballot: results are shown when the vote closes",
        "open": "Open ballot: results are visible as votes come in",
        "quorum_line": "quorum {quorum} — {state}",
        "reached": "reached",
        "not_reached": "not reached",
        "results": "Results",
        "outcome": "Outcome",
        "no_quorum": "no decision — quorum not reached",
        "tie": "no decision — a tie",
        "closed": "Closed",
        "closed_deadline": "deadline reached",
        "closed_all_voted": "everyone voted",
        "closed_cancelled": "cancelled",
        "reason": "Reason",
        "how_to_vote": "Answer the poll below; your last answer before the close counts.",
        "approval": "Approval",
        "series": "Series",
        "valid_until": "Valid until",
        "file": "File",
        "mode": "Approval mode",
        "sequential": "Sequential",
        "parallel": "Parallel",
        "group": "Group",
        "signature_required": "An electronic signature is required",
        "deadline": "Deadline",
        "participants": "Participants",
        "approved": "approved",
        "rejected": "rejected",
        "waiting": "decision pending",
        "queued": "waiting for their turn",
        "not_needed": "no decision needed",
        "signed": "signature verified",
        "current": "Waiting for",
        "how_to_decide": 'Do you approve? Buttons under this card: "✅ Yes" approves, "❌ No" '
        'rejects (I ask for the reason). Or type "approve [comment]" / "reject <reason>".',
        "outcome_approved": "approved ✅",
        "outcome_rejected": "rejected ❌",
        "outcome_cancelled": "approval cancelled",
        "created": "System assistant: chat created",
        "procurement": "Procurement",
        "object": "Site",
        "stage": "Stage",
        "room": "Chat",
        "purpose": "Purpose",
        "link": "Procurement in the system",
        "no_deletion": "Messages and files are never deleted: the chat is part of the "
        "procurement's record.",
        "help_hint": 'Assistant commands: type "help".',
        "refused": "Could not do that",
        "invalid": "Invalid command",
        "signature_ok": "Signature verified ✅",
        "signature_bad": "Signature refused ❌",
        "signature_signer": "Signer",
        "signature_check": "Failed check",
        "signature_next": 'To approve, type "approve [comment]" or answer the poll.',
        "check_parse": "signature file format (a detached CMS .p7s/.sig is needed)",
        "check_digest": "the signature is for another file",
        "check_signature": "the signature does not match the certificate",
        "check_certificate_validity": "certificate validity period",
        "check_chain": "certificate chain of trust",
        "check_key_usage": "certificate key usage",
        "check_identity": "the certificate is not the approver's",
        "approve_option": "Approve",
        "reject_option": "Reject",
        "open_votes": "Open votes",
        "no_open_votes": "There are no open votes in this chat",
        "not_answered": "Not answered yet",
        "incident_redaction": "A message was deleted",
        "incident_tombstone": "An attempt to replace this chat",
        "incident_shutdown": "The chat was shut down by a server administrator",
        "incident_by": "By",
        "incident_kept": "The original is kept in the assistant's record; "
        "the procurement's history is not lost.",
        "documents": "Documents in this chat",
        "no_documents": "There are no documents in this chat yet",
        "documents_note": "Files are kept in the procurement's document registry.",
        "seen": "Seen by",
        "seen_nobody": "Nobody has marked it read yet",
        "seen_note": "From read receipts: private read receipts are not visible, "
        "so the list may be incomplete.",
        "uploaded_by": "Uploaded by",
        "document_not_found": "No such document in this chat",
        "document_too_large": "The file was not added to the document registry",
        "document_limit": "The file is {size}, over the limit of {limit}.",
        "more_items": "… and {count} more",
        "earlier_items": "… and {count} earlier",
        "message_cut": "… (message shortened)",
    },
}

SUBJECT_KINDS: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "specification": "Спецификация",
        "offer": "Предложение",
        "contract": "Договор",
        "protocol": "Протокол",
        "shipment": "Отгрузочная ведомость",
    },
    Locale.EN: {
        "specification": "Specification",
        "offer": "Offer",
        "contract": "Contract",
        "protocol": "Protocol",
        "shipment": "Shipping list",
    },
}

STAGES: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        "request": "Заявка",
        "offers": "Сбор предложений",
        "commission": "Работа комиссии",
        "contract": "Заключение договора",
        "delivery": "Поставка",
        "warehouse": "Приёмка на склад",
        "completed": "Завершена",
        "cancelled": "Отменена",
    },
    Locale.EN: {
        "request": "Request",
        "offers": "Collecting offers",
        "commission": "Commission",
        "contract": "Contract",
        "delivery": "Delivery",
        "warehouse": "Warehouse acceptance",
        "completed": "Completed",
        "cancelled": "Cancelled",
    },
}

# Room kinds of DESIGN §3: (name, what the room is for).
ROOM_KINDS: dict[Locale, dict[str, tuple[str, str]]] = {
    Locale.RU: {
        "org": ("Чат организации по закупке", "обсуждение закупки командой организации."),
        "supplier": (
            "Чат с поставщиком",
            "переписка категорийного менеджера с поставщиком о его предложении; "
            "другие поставщики этот чат не видят.",
        ),
        "commission": ("Чат комиссии закупки", "работа комиссии и голосования."),
        "approval": ("Чат согласования", "согласование документа участниками маршрута."),
        "specification": ("Чат спецификации", "обсуждение спецификации с поставщиком."),
        "shipment": (
            "Чат отгрузочной ведомости",
            "отгрузка и приёмка товара на склад по отгрузочной ведомости.",
        ),
    },
    Locale.EN: {
        "org": ("Organisation chat", "the organisation's team discusses the procurement."),
        "supplier": (
            "Supplier chat",
            "the category manager and the supplier discuss the supplier's offer; "
            "other suppliers cannot see this chat.",
        ),
        "commission": ("Commission chat", "the procurement commission's work and votes."),
        "approval": ("Approval chat", "the approvers decide on a document."),
        "specification": (
            "Specification chat",
            "the specification is discussed with the supplier.",
        ),
        "shipment": (
            "Shipping list chat",
            "shipment and warehouse acceptance of the goods on the shipping list.",
        ),
    },
}

REFUSALS: dict[Locale, dict[str, str]] = {
    Locale.RU: {
        RefusalCode.ENDED.value: "Согласование уже завершено.",
        RefusalCode.NOT_AN_APPROVER.value: "Вы не участвуете в этом согласовании.",
        RefusalCode.NOT_YOUR_TURN.value: "Сейчас не ваша очередь согласовывать.",
        RefusalCode.ALREADY_DECIDED.value: "Вы уже приняли решение по этому документу.",
        RefusalCode.REASON_REQUIRED.value: "Укажите причину отклонения: «отклонить <причина>».",
        RefusalCode.SIGNATURE_REQUIRED.value: "Для согласования нужна электронная подпись "
        "документа: приложите файл подписи (.p7s или .sig).",
        RefusalCode.SIGNATURE_INVALID.value: "Электронная подпись не прошла проверку.",
        "ORG_PROCUREMENT_VOTE_NO_VOTERS": "В голосовании некому участвовать: "
        "в комиссии закупки нет участников.",
        "ORG_PROCUREMENT_VOTE_QUORUM_UNREACHABLE": "Кворум голосования больше числа "
        "голосующих: его нельзя набрать.",
        "ORG_PROCUREMENT_DOCUMENT_PENDING": "Документ ещё не получен из системы закупок: "
        "решение можно принять, когда он появится в чате.",
    },
    Locale.EN: {
        RefusalCode.ENDED.value: "The approval has already ended.",
        RefusalCode.NOT_AN_APPROVER.value: "You are not an approver of this document.",
        RefusalCode.NOT_YOUR_TURN.value: "It is not your turn to decide yet.",
        RefusalCode.ALREADY_DECIDED.value: "You have already decided on this document.",
        RefusalCode.REASON_REQUIRED.value: 'Give a reason for the rejection: "reject <reason>".',
        RefusalCode.SIGNATURE_REQUIRED.value: "Approving needs an electronic signature of the "
        "document: attach the signature file (.p7s or .sig).",
        RefusalCode.SIGNATURE_INVALID.value: "The electronic signature does not verify.",
        "ORG_PROCUREMENT_VOTE_NO_VOTERS": "Nobody can vote: the procurement commission "
        "has no members.",
        "ORG_PROCUREMENT_VOTE_QUORUM_UNREACHABLE": "The quorum is larger than the number of "
        "voters and can never be reached.",
        "ORG_PROCUREMENT_DOCUMENT_PENDING": "The document has not arrived from the procurement "
        "system yet: decide once it is in the chat.",
    },
}

HELP: dict[Locale, tuple[str, str, list[tuple[str, str]], str]] = {
    Locale.RU: (
        "Команды системного помощника",
        "Я веду чаты закупок: чат организации, конфиденциальные чаты с поставщиками, "
        "комиссию, согласования, спецификации и отгрузочные ведомости. Ставлю голосования, "
        "веду согласования с электронной подписью и реестр документов; ничего не удаляется.",
        [
            ("помощь", "этот список"),
            ("голосование", "ход голосования в этом чате"),
            ("документы", "документы закупки, доступные в этом чате"),
            (
                "кто видел <документ>",
                "кто открывал документ (по отметкам о прочтении; скрытые отметки не видны)",
            ),
            (
                "согласовать [комментарий]",
                "согласовать документ; если нужна электронная подпись, приложите файл "
                "подписи (.p7s или .sig)",
            ),
            ("отклонить <причина>", "отклонить документ, причина обязательна"),
        ],
        "Команды понимаются и по-английски: help, vote, documents, seen, approve, reject.",
    ),
    Locale.EN: (
        "System assistant commands",
        "I keep the procurement chats: the organisation chat, confidential chats with each "
        "supplier, the commission, approvals, specifications and shipping lists. I run votes, "
        "approvals with electronic signatures and the document registry; nothing is deleted.",
        [
            ("help", "this list"),
            ("vote", "how the vote in this chat is going"),
            ("documents", "the procurement's documents visible in this chat"),
            (
                "seen <document>",
                "who opened a document (from read receipts; private ones are not seen)",
            ),
            (
                "approve [comment]",
                "approve the document; if a signature is required, attach the signature file "
                "(.p7s or .sig)",
            ),
            ("reject <reason>", "reject the document, a reason is required"),
        ],
        "Russian commands work too: помощь, голосование, документы, кто видел, согласовать, "
        "отклонить.",
    ),
}

MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
