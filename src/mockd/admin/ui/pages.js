// A finished recording's entries, read through GET /stream-recordings/{id}/frames by pages of 10,000
// (the API's largest), a few at a time, handed on in recorded order as they arrive.

import {get, query, recordingPath} from "./api.js";

export const PAGE_SIZE = 10_000;
const FIRST_PAGE = 2_000; // smaller, so that the timeline is on screen sooner
const PARALLEL = 3;

/** The entries of a page, whatever the protocol calls them. */
export function entriesOf(page) {
  return page.frames || page.events || page.exchanges || [];
}

function fetchPage(id, offset, limit, signal) {
  return get(recordingPath(id, "/frames") + query({offset, limit}), {signal});
}

/** Loads every entry of recording `id`; `onEntries(entries, offset, total)` is called for each page,
 * in order (a page that arrives early waits for the ones before it). Resolves to the total. */
export async function loadEntries(id, onEntries, signal) {
  const first = await fetchPage(id, 0, FIRST_PAGE, signal);
  const total = first.total;
  onEntries(entriesOf(first), 0, total);
  const offsets = [];
  for (let offset = FIRST_PAGE; offset < total; offset += PAGE_SIZE) {
    offsets.push(offset);
  }
  const arrived = new Map();
  let handedOn = 0; // how many of `offsets` went to onEntries
  let asked = 0;
  const handOn = () => {
    while (handedOn < offsets.length && arrived.has(offsets[handedOn])) {
      const offset = offsets[handedOn++];
      onEntries(arrived.get(offset), offset, total);
      arrived.delete(offset);
    }
  };
  const worker = async () => {
    while (asked < offsets.length) {
      const offset = offsets[asked++];
      arrived.set(offset, entriesOf(await fetchPage(id, offset, PAGE_SIZE, signal)));
      handOn();
    }
  };
  await Promise.all(Array.from({length: Math.min(PARALLEL, offsets.length)}, worker));
  return total;
}
