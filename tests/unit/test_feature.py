"""The set of features core runs: duplicates and declared-but-unhandled parts stop the start."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.domain.commands import Command
from bridge.feature import Feature, FeatureConflict, FeatureSet, JsonView, Scope


async def handler(*_: Any) -> None:
    return None


async def view(_: Any) -> dict[str, Any] | None:
    return None


def test_everything_declared_once_and_handled() -> None:
    features = FeatureSet(
        (
            Feature("a", webhooks={"x.one": handler}, commands={Command.VOTE: handler}),
            Feature("b", webhooks={"x.two": handler}, listeners=(handler,)),
        ),
        webhook_types=("x.one", "x.two"),
        commands=(Command.VOTE,),
    )
    assert set(features.webhooks) == {"x.one", "x.two"}
    assert features.listeners == (handler,)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (
            (Feature("a", webhooks={"x.one": handler}), Feature("b", webhooks={"x.one": handler})),
            "webhook type 'x.one' is declared by both a and b",
        ),
        (
            (
                Feature("a", commands={Command.VOTE: handler}),
                Feature("b", commands={Command.VOTE: handler}),
            ),
            "command 'vote' is declared by both a and b",
        ),
        (
            (
                Feature("a", routes=(JsonView("/api/v1/x", view, Scope.READ),)),
                Feature("b", routes=(JsonView("/api/v1/x", view, Scope.ADMIN),)),
            ),
            "route '/api/v1/x' is declared by both a and b",
        ),
        ((Feature("a"),), "no feature handles the webhook type 'x.one'"),
        (
            (Feature("a", webhooks={"x.one": handler}),),
            "no feature handles the command 'vote'",
        ),
    ],
)
def test_duplicates_and_gaps_are_refused(features: tuple[Feature, ...], message: str) -> None:
    with pytest.raises(FeatureConflict, match=message):
        FeatureSet(features, webhook_types=("x.one",), commands=(Command.VOTE,))
