// The selected entry (a frame, an SSE event or an HTTP exchange) and its connection's metadata,
// written as text only: the payload is pretty-printed JSON when it parses, a hex dump when binary.

import {byTestId, el, fill, mapping, pairs} from "./dom.js";
import {bytesOfBase64, gapLabel, hexDump, prettyJson} from "./format.js";
import {laneLabel} from "./timeline.js";

function payloadView(data, encoding) {
  if (data === undefined) {
    return el("p", {class: "muted", "data-testid": "detail-data"}, "no data");
  }
  if (encoding === "base64") {
    let dump;
    try {
      dump = hexDump(bytesOfBase64(data));
    } catch {
      dump = "(not valid base64) " + data;
    }
    return el("pre", {class: "payload hex", "data-testid": "detail-data"}, dump);
  }
  const pretty = prettyJson(data);
  if (pretty === null) {
    return el("pre", {class: "payload", "data-testid": "detail-data"}, data);
  }
  return el("div", {},
    el("pre", {class: "payload json", "data-testid": "detail-data"}, pretty),
    el("details", {}, el("summary", {}, "exact text"), el("pre", {class: "payload", "data-testid": "detail-raw"}, data)));
}

function frameRows(frame) {
  return [
    ["type", frame.type, "detail-type"],
    ["direction", frame.direction === "c2s" ? "c2s (client → server)" : "s2c (server → client)", "detail-direction"],
    ["size", frame.size + " bytes", "detail-size"],
    ["encoding", frame.encoding],
    ["close code", frame.closeCode],
    ["close reason", frame.closeReason],
    ["redaction", frame.redactionFailed ? "failed (data holds the redact value)" : undefined],
  ];
}

function eventRows(event) {
  return [
    ["event type", event.type, "detail-type"],
    ["id", event.id],
    ["retry", event.retry],
    ["comment", event.comment],
    ["size", event.data === undefined ? undefined : new TextEncoder().encode(event.data).length + " bytes",
      "detail-size"],
  ];
}

function exchangeRows(exchange) {
  const {request, response} = exchange;
  return [
    ["request", request.method + " " + request.path],
    ["status", response.status],
    ["took", exchange.durationMs + " ms"],
    ["request size", request.size + " bytes"],
    ["response size", response.size + " bytes"],
    ["origin", exchange.origin],
  ];
}

function exchangeBodies(exchange) {
  const {request, response} = exchange;
  return [
    el("h4", {}, "request headers"), mapping(request.headers, "detail-request-headers"),
    el("h4", {}, "request body"), payloadView(request.body, request.bodyEncoding),
    el("h4", {}, "response headers"), mapping(response.headers, "detail-response-headers"),
    el("h4", {}, "response body"), payloadView(response.body, response.bodyEncoding),
  ];
}

/** Shows entry number `index` of a recording of `protocol`, found at `place` on the timeline. */
export function showEntry(entry, index, place, protocol, total) {
  const gap = place.lane.gapBefore(place.position);
  const common = [
    ["entry", `#${index + 1} of ${total}`, "detail-entry"],
    ["lane", laneLabel(place.lane), "detail-lane"],
    ["timestamp", entry.timestamp, "detail-timestamp"],
    ["relativeMs", entry.relativeMs + " ms", "detail-relative"],
  ];
  const specific = protocol === "websocket" ? frameRows(entry) : protocol === "sse" ? eventRows(entry)
    : exchangeRows(entry);
  const payload = protocol === "http" ? exchangeBodies(entry) : [el("h4", {}, "data"), payloadView(entry.data, entry.encoding)];
  const panel = byTestId("frame-detail");
  fill(panel,
    el("h3", {}, protocol === "websocket" ? "Frame" : protocol === "sse" ? "Event" : "Exchange"),
    pairs([...common, ["gap", gapLabel(gap), "detail-gap"], ...specific], "detail-fields"),
    ...payload);
  panel.dataset.index = String(index);
}

export function clearEntry() {
  const panel = byTestId("frame-detail");
  fill(panel, el("p", {class: "muted"}, "Click a mark on the timeline to see its frame."));
  delete panel.dataset.index;
}

/** The connection's request and close, from the recording's head (`connections[]`). */
export function showConnection(record, number) {
  const panel = byTestId("connection-meta");
  if (!record) {
    fill(panel, el("h3", {}, "Connection " + number), el("p", {class: "muted"}, "not described yet"));
    return;
  }
  fill(panel,
    el("h3", {}, "Connection " + record.connection),
    pairs([
      ["origin", record.origin],
      ["request", [record.method, record.path].filter(Boolean).join(" ")],
      ["remote", record.remoteAddr],
      ["opened", record.openedAt],
      ["closed", record.closedAt],
      ["subprotocol", record.subprotocol],
      ["close code", record.closeCode],
      ["close reason", record.closeReason],
      ["status", record.status],
      ["body", record.body],
    ], "connection-fields"),
    el("h4", {}, "query"), mapping(record.query, "connection-query"),
    el("h4", {}, "headers"), mapping(record.headers, "connection-headers"),
    record.responseHeaders ? [el("h4", {}, "response headers"), mapping(record.responseHeaders, "connection-response-headers")] : null);
}

export function clearConnection() {
  fill(byTestId("connection-meta"));
}
