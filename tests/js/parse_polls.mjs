// Parses Matrix poll events (MSC3381) the way Element does, with matrix-js-sdk.
//
// stdin:  a JSON array of raw Matrix events, each {type, content, event_id?, sender?, room_id?}
//         (event JSON as Synapse returns it from /rooms/{roomId}/event/{eventId} works as is).
// stdout: a JSON array with one object per input event, in order:
//   poll start    -> {kind: "start", question, pollKind, rawKind, maxSelections,
//                     answers: [{id, text}], viaMatrixEvent}
//   poll end      -> {kind: "end", pollEventId, text, startFound, senderMatchesStart,
//                     viaMatrixEvent}
//   poll response -> {kind: "response", pollEventId, answers, spoiled, validatedAgainstStart,
//                     viaMatrixEvent}
//   rejected      -> {kind: "error", type, errorName, message, viaMatrixEvent}
//   anything else -> {kind: "ignored", type}
//
// Each event is parsed twice:
// * with matrix-js-sdk's own `extensible_events_v1` classes (`new PollStartEvent(event)` etc.,
//   the fields above), and
// * the way Element's timeline does it: `new MatrixEvent(raw)`, then for a poll start
//   `new Poll(matrixEvent, ...)` as `Room.processPollEvent` does (`M_POLL_START.matches(type)`)
//   and `poll.pollEvent`, for relations `matrixEvent.unstableExtensibleEvent` (Element's
//   MPollBody casts exactly that to a PollStartEvent / PollResponseEvent). That path goes
//   through matrix-events-sdk's `ExtensibleEvents.parse`, which returns null for an event it
//   rejects; `viaMatrixEvent` is the same projection computed from it, or null when Element
//   would get no poll (the error, if any, in `viaMatrixEventError`).
//
// A response is validated against the poll start with the same event_id in the input (as
// Element validates votes against the poll), or only on its own when the start is absent.
// Exit status is non-zero only when the harness itself fails (bad input, SDK not importable).

import { MatrixEvent } from "matrix-js-sdk/lib/models/event.js";
import { Poll } from "matrix-js-sdk/lib/models/poll.js";
import { M_POLL_START, M_POLL_END, M_POLL_RESPONSE } from "matrix-js-sdk/lib/@types/polls.js";
import { PollStartEvent } from "matrix-js-sdk/lib/extensible_events_v1/PollStartEvent.js";
import { PollEndEvent } from "matrix-js-sdk/lib/extensible_events_v1/PollEndEvent.js";
import { PollResponseEvent } from "matrix-js-sdk/lib/extensible_events_v1/PollResponseEvent.js";

const PLACEHOLDER_ROOM = "!parse-polls:localhost";
const PLACEHOLDER_SENDER = "@parse-polls:localhost";

function readStdin() {
    return new Promise((resolve, reject) => {
        const chunks = [];
        process.stdin.on("data", (chunk) => chunks.push(chunk));
        process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
        process.stdin.on("error", reject);
    });
}

function describeError(error) {
    // InvalidEventError does not set `name`; its class name is what tells it apart.
    const errorName = error?.constructor?.name ?? error?.name ?? typeof error;
    return { errorName, message: String(error?.message ?? error) };
}

function projectStart(ev) {
    return {
        kind: "start",
        question: ev.question.text,
        pollKind: ev.kind.name,
        rawKind: ev.rawKind ?? null,
        maxSelections: ev.maxSelections,
        answers: ev.answers.map((a) => ({ id: a.id, text: a.text })),
    };
}

function projectEnd(ev) {
    return { kind: "end", pollEventId: ev.pollEventId, text: ev.closingMessage?.text ?? null };
}

function projectResponse(ev) {
    return {
        kind: "response",
        pollEventId: ev.pollEventId,
        answers: [...ev.answerIds],
        spoiled: ev.spoiled,
    };
}

// The MatrixEvent the client would hold; Poll needs a room id and an event id.
function matrixEventFor(raw, index) {
    return new MatrixEvent({
        ...raw,
        event_id: raw.event_id ?? `$parse-polls-${index}`,
        room_id: raw.room_id ?? PLACEHOLDER_ROOM,
        sender: raw.sender ?? PLACEHOLDER_SENDER,
        origin_server_ts: raw.origin_server_ts ?? 0,
    });
}

// Element's path: the extensible event its poll components read (null if it has none).
function viaMatrixEvent(raw, index, startsById) {
    const matrixEvent = matrixEventFor(raw, index);
    try {
        if (M_POLL_START.matches(raw.type)) {
            const pollEvent = new Poll(matrixEvent, null, null).pollEvent;
            return { value: pollEvent ? projectStart(pollEvent) : null, startEvent: pollEvent };
        }
        const ext = matrixEvent.unstableExtensibleEvent;
        if (!ext) return { value: null };
        if (M_POLL_END.matches(raw.type)) return { value: projectEnd(ext) };
        const start = startsById.get(ext.pollEventId)?.viaMatrixEvent;
        if (start) ext.validateAgainst(start);
        return { value: projectResponse(ext) };
    } catch (error) {
        return { value: null, error: describeError(error) };
    }
}

function parseAll(events) {
    // event_id -> {sdk: PollStartEvent|undefined, viaMatrixEvent: ...|undefined, sender}
    const startsById = new Map();
    const results = [];
    events.forEach((raw, index) => {
        if (raw === null || typeof raw !== "object" || typeof raw.type !== "string") {
            throw new Error(`event ${index} is not an object with a string "type"`);
        }
        const isStart = M_POLL_START.matches(raw.type);
        const isEnd = M_POLL_END.matches(raw.type);
        const isResponse = M_POLL_RESPONSE.matches(raw.type);
        if (!isStart && !isEnd && !isResponse) {
            results.push({ kind: "ignored", type: raw.type });
            return;
        }
        const wire = { type: raw.type, content: raw.content };
        const element = viaMatrixEvent(raw, index, startsById);
        let result;
        try {
            if (isStart) {
                const ev = new PollStartEvent(wire);
                result = projectStart(ev);
                if (raw.event_id) {
                    startsById.set(raw.event_id, {
                        sdk: ev,
                        viaMatrixEvent: element.startEvent,
                        sender: raw.sender,
                    });
                }
            } else if (isEnd) {
                const ev = new PollEndEvent(wire);
                const start = startsById.get(ev.pollEventId);
                result = {
                    ...projectEnd(ev),
                    startFound: Boolean(start),
                    senderMatchesStart:
                        start && start.sender && raw.sender ? start.sender === raw.sender : null,
                };
            } else {
                const ev = new PollResponseEvent(wire);
                const start = startsById.get(ev.pollEventId)?.sdk;
                if (start) ev.validateAgainst(start);
                result = { ...projectResponse(ev), validatedAgainstStart: Boolean(start) };
            }
        } catch (error) {
            result = { kind: "error", type: raw.type, ...describeError(error) };
        }
        result.viaMatrixEvent = element.value;
        if (element.error) result.viaMatrixEventError = element.error;
        results.push(result);
    });
    return results;
}

try {
    const input = JSON.parse(await readStdin());
    if (!Array.isArray(input)) throw new Error("stdin must be a JSON array of events");
    process.stdout.write(JSON.stringify(parseAll(input)) + "\n");
} catch (error) {
    process.stderr.write(`parse_polls: ${error?.stack ?? error}\n`);
    process.exitCode = 1;
}
