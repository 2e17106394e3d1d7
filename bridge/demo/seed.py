"""The seed's own figures: the vote on specification 174/741-12.21-002, as the ERP sends it."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def seed_vote(procurement_id: str, vote_id: str, closes_at: datetime) -> dict[str, Any]:
    """`vote.requested` data for the seed's voting card (DESIGN §4.1)."""
    return {
        "procurement_id": procurement_id,
        "vote_id": vote_id,
        "question": "Утвердить спецификацию 174/741-12.21-002?",
        "subject": {
            "kind": "specification",
            "number": "174/741-12.21-002",
            "supplier": "ООО «ТоргПрофи»",
            "delivery_term_days": 2,
            "delivery_date": "2022-05-12",
            "cost_without_vat": "48801.24",
            "cost_with_vat": "58561.49",
            "currency": "RUB",
        },
        "options": [
            {"id": "for", "label": "За"},
            {"id": "against", "label": "Против"},
            {"id": "abstain", "label": "Воздержался"},
        ],
        "voters": None,
        "quorum": 6,
        "closes_at": closes_at.isoformat(),
        "disclosed": False,
    }
