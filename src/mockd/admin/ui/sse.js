// Server-Sent Events over fetch(): EventSource cannot send the Authorization header, so the page reads
// the stream itself and parses it with this small parser (the WHATWG event-stream rules: lines end in
// CR, LF or CRLF; a blank line dispatches; "event", "data", "id", "retry" fields; ":" starts a comment;
// the last event id carries over to later events).

export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.skipLineFeed = false; // the last chunk ended in CR: a LF opening the next one belongs to it
    this.lastEventId = undefined; // kept from event to event, as EventSource keeps it
    this.retry = undefined; // the server's reconnection time (ms), a setting of the stream, not of an event
    this.reset();
  }

  reset() {
    this.type = "";
    this.data = [];
  }

  feed(text) {
    if (this.skipLineFeed && text.startsWith("\n")) {
      text = text.slice(1);
    }
    this.skipLineFeed = text.endsWith("\r");
    const lines = (this.buffer + text).split(/\r\n|\r|\n/);
    this.buffer = lines.pop();
    for (const line of lines) {
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) {
      return; // a comment (the server's keepalive)
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    if (field === "event") {
      this.type = value;
    } else if (field === "data") {
      this.data.push(value);
    } else if (field === "id" && !value.includes("\0")) {
      this.lastEventId = value;
    } else if (field === "retry" && /^\d+$/.test(value)) {
      this.retry = Number(value);
    }
  }

  dispatch() {
    if (this.data.length) {
      this.onEvent({type: this.type || "message", data: this.data.join("\n"), lastEventId: this.lastEventId});
    }
    this.reset();
  }
}

/** Reads an event-stream Response to its end, calling `onEvent` for each event; resolves when the
 * server ends the body, rejects when the connection breaks (or `signal` aborts). */
export async function readEventStream(response, onEvent) {
  const parser = new SseParser(onEvent);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) {
        return;
      }
      parser.feed(value);
    }
  } finally {
    reader.releaseLock();
  }
}
