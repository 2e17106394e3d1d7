"""Poll events read back by matrix-js-sdk, the SDK inside Element (DESIGN §4.5).

`parse_with_matrix_js_sdk` runs `tests/js/parse_polls.mjs` under Node with the events on
stdin; the events are raw Matrix events (`{"type", "content", "event_id"?, "sender"?}`), so
event JSON as Synapse returns it from `/rooms/{roomId}/event/{eventId}` can be passed as is.
Each result is the SDK's reading of one event (see parse_polls.mjs for the fields), with
`viaMatrixEvent` holding what Element's poll components get through
`MatrixEvent.unstableExtensibleEvent` (None when Element would show no poll).

`assert_element_reads_polls` is the check for integration tests: every poll event must be
accepted, and both SDK paths must agree.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "parse_polls.mjs"
TIMEOUT_SECONDS = 60

# Fields about the other events in the batch, or Element's view itself.
_CONTEXT_FIELDS = frozenset(
    {
        "viaMatrixEvent",
        "viaMatrixEventError",
        "startFound",
        "senderMatchesStart",
        "validatedAgainstStart",
    }
)


class MatrixJsSdkUnavailable(RuntimeError):
    """Node or the npm packages in tests/js are missing."""


class MatrixJsSdkHarnessError(RuntimeError):
    """parse_polls.mjs failed (not the same as the SDK rejecting an event)."""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise MatrixJsSdkUnavailable("node is not on PATH: install Node.js 20+ to run this test")
    if not (JS_DIR / "node_modules" / "matrix-js-sdk").is_dir():
        raise MatrixJsSdkUnavailable(
            f"matrix-js-sdk is not installed in {JS_DIR / 'node_modules'}: "
            f"run npm install in tests/js (`cd {JS_DIR} && npm install`; scripts/test.sh does it)"
        )
    return node


def parse_with_matrix_js_sdk(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """matrix-js-sdk's reading of each event, in order (`kind`: start/end/response/error/
    ignored). A response is validated against the start with its `event_id` in `events`."""
    node = _node()
    payload = json.dumps([dict(event) for event in events], ensure_ascii=False)
    try:
        proc = subprocess.run(
            [node, str(SCRIPT)],
            input=payload.encode(),
            capture_output=True,
            cwd=JS_DIR,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise MatrixJsSdkHarnessError(
            f"parse_polls.mjs did not finish in {TIMEOUT_SECONDS} s"
        ) from e
    stderr = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0:
        raise MatrixJsSdkHarnessError(
            f"parse_polls.mjs exited with {proc.returncode}: {stderr or '(no output)'}"
        )
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise MatrixJsSdkHarnessError(
            f"parse_polls.mjs printed no JSON: {proc.stdout[:500]!r} {stderr}"
        ) from e
    if not isinstance(results, list) or len(results) != len(events):
        raise MatrixJsSdkHarnessError(f"expected {len(events)} results, got {results!r}")
    return results


def without_element_view(result: Mapping[str, Any]) -> dict[str, Any]:
    """The fields both SDK paths produce, to compare a result with its `viaMatrixEvent`."""
    return {k: v for k, v in result.items() if k not in _CONTEXT_FIELDS}


def assert_element_reads_polls(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Parse `events` and fail the test unless every poll event among them is one Element
    shows: accepted by matrix-js-sdk, the same through `MatrixEvent` as Element reads it,
    responses that name an answer of their poll (when the poll is in `events`), and ends
    sent by the poll's sender (when both senders are known). Returns the results."""
    results = parse_with_matrix_js_sdk(events)
    for event, result in zip(events, results, strict=True):
        where = f"{event.get('type')} {event.get('event_id', '')}".strip()
        if result["kind"] == "ignored":
            continue
        if result["kind"] == "error":
            pytest.fail(f"matrix-js-sdk rejects {where}: {result['message']}\n{event}")
        element = result.get("viaMatrixEvent")
        if element is None:
            pytest.fail(
                f"Element gets no poll from {where}: {result.get('viaMatrixEventError')}\n{event}"
            )
        if element != without_element_view(result):
            pytest.fail(f"Element reads {where} differently: {element} != {result}")
        if result["kind"] == "response" and result["validatedAgainstStart"] and result["spoiled"]:
            pytest.fail(f"{where} names no answer of its poll: {event}")
        if result["kind"] == "end" and result["senderMatchesStart"] is False:
            pytest.fail(f"{where} is not sent by the poll's sender; Element ignores it")
    return results
