"""People of a test procurement and the snapshots the ERP sends about them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .matrix_user import MatrixUser


@dataclass
class Supplier:
    id: str
    name: str
    members: list[MatrixUser]


@dataclass
class Cast:
    manager: MatrixUser
    team: list[MatrixUser]
    logistics: list[MatrixUser]
    suppliers: list[Supplier]
    commission: list[MatrixUser]
    procurement_id: str = field(default_factory=lambda: f"P{uuid.uuid4().hex[:8]}")
    version: int = 0

    @property
    def everyone(self) -> list[MatrixUser]:
        people = [self.manager, *self.team, *self.logistics, *self.commission]
        return people + [m for s in self.suppliers for m in s.members]

    def snapshot(self, stage: str, **extra: Any) -> dict[str, Any]:
        self.version += 1
        data: dict[str, Any] = {
            "id": self.procurement_id,
            "version": self.version,
            "number": "26908",
            "title": "Поставка арматуры А500С",
            "object": {"id": "lakhta-2", "name": "Лахта Центр, корпус 2"},
            "organization": "Газпром_Сибирь",
            "url": f"https://erp.example/procurements/{self.procurement_id}",
            "stage": stage,
            "manager": self.manager.user_id,
            "team": [u.user_id for u in self.team],
            "logistics": [u.user_id for u in self.logistics],
            "suppliers": [
                {"id": s.id, "name": s.name, "members": [m.user_id for m in s.members]}
                for s in self.suppliers
            ],
        }
        if self.commission:
            data["commission"] = {
                "id": "15000.16969",
                "name": "Комиссия № 15000.16969 от 30.11.2022",
                "chair": self.commission[0].user_id,
                "members": [u.user_id for u in self.commission],
            }
        data.update(extra)
        return data


async def make_cast(
    user_factory: Any, *, suppliers: int = 2, members: int = 1, commission: int = 2
) -> Cast:
    names = ["ООО «ТоргПрофи»", "ООО «СтальИнвест»", "АО «Северный металл»", "ООО «Арматура+»"]
    return Cast(
        manager=await user_factory("manager"),
        team=[await user_factory("team")],
        logistics=[await user_factory("sklad")],
        suppliers=[
            Supplier(
                f"supplier{i}-{uuid.uuid4().hex[:6]}",
                names[i % len(names)],
                [await user_factory(f"sup{i}m{j}") for j in range(members)],
            )
            for i in range(suppliers)
        ],
        commission=[await user_factory(f"com{i}") for i in range(commission)],
    )
