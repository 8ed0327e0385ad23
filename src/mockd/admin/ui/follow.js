// A recording as it is recorded: GET /stream-recordings/{id}/live, the admin API's push channel. It
// sends every entry from `offset` on, then the new ones after each of the session's flushes, then an
// "end" event. A stream that breaks before "end" is opened again from the last entry received.

import {ApiError, query, recordingPath, request} from "./api.js";
import {entriesOf} from "./pages.js";
import {readEventStream} from "./sse.js";

const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5000;

/** Follows recording `id` until its end (or until `signal` aborts): `onEntries(entries, offset)`
 * for each batch, `onEnd(status)` once; `onState(text)` says whether it is connected. Errors the
 * API answers (404, 401…) end the following and are thrown; a broken connection is retried. */
export async function follow(id, {onEntries, onEnd, onState = () => {}, signal}) {
  let offset = 0;
  let delay = RETRY_FIRST_MS;
  for (;;) {
    let ended = false;
    try {
      const response = await request("GET", recordingPath(id, "/live") + query({offset}),
                                     {signal, accept: "text/event-stream"});
      onState("live");
      delay = RETRY_FIRST_MS;
      await readEventStream(response, (event) => {
        if (event.type === "entries") {
          const page = JSON.parse(event.data);
          const entries = entriesOf(page);
          onEntries(entries, page.offset);
          offset = Math.max(offset, page.offset + entries.length);
        } else if (event.type === "end") {
          ended = true;
          onEnd(JSON.parse(event.data).status);
        }
      });
    } catch (error) {
      if (signal.aborted || (error instanceof ApiError && error.status !== 0)) {
        throw error;
      }
    }
    if (ended) {
      return;
    }
    onState("reconnecting");
    await pause(delay, signal);
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  }
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, {once: true});
  });
}
