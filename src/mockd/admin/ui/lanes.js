// A recording's entries as the timeline sees them: one lane per connection and direction (c2s / s2c;
// an SSE stream has one, HTTP exchanges share one), each lane the entries' times in typed arrays,
// sorted, so drawing the visible part and hit-testing a click are binary searches.

export const KINDS = ["text", "binary", "ping", "pong", "close", "event", "comment", "retry", "exchange"];
const KIND_CODE = Object.fromEntries(KINDS.map((name, code) => [name, code]));

/** The mark's kind code of an entry: a frame's type, an SSE block's shape, or an HTTP exchange. */
export function kindOf(entry, protocol) {
  if (protocol === "websocket") {
    return KIND_CODE[entry.type] ?? KIND_CODE.text;
  }
  if (protocol === "sse") {
    if (entry.data !== undefined || entry.type !== undefined) {
      return KIND_CODE.event;
    }
    return entry.retry !== undefined ? KIND_CODE.retry : KIND_CODE.comment;
  }
  return KIND_CODE.exchange;
}

function laneKey(connection, direction) {
  return connection + ":" + direction;
}

/** Where an entry goes: [connection, direction]. */
export function placeOf(entry, protocol) {
  if (protocol === "websocket") {
    return [entry.connection ?? 1, entry.direction === "c2s" ? "c2s" : "s2c"];
  }
  if (protocol === "sse") {
    return [entry.connection ?? 1, "s2c"];
  }
  return [0, "http"];
}

const DIRECTION_ORDER = {c2s: 0, s2c: 1, http: 2};

export class Lane {
  constructor(connection, direction) {
    this.connection = connection;
    this.direction = direction;
    this.length = 0;
    this.times = new Float64Array(256);
    this.indices = new Int32Array(256); // the entries' numbers in the recording
    this.kinds = new Uint8Array(256);
    this.sorted = true;
  }

  push(time, index, kind) {
    if (this.length === this.times.length) {
      this.grow();
    }
    const at = this.length;
    if (at && (time < this.times[at - 1] || (time === this.times[at - 1] && index < this.indices[at - 1]))) {
      this.sorted = false;
    }
    this.times[at] = time;
    this.indices[at] = index;
    this.kinds[at] = kind;
    this.length = at + 1;
  }

  grow() {
    const size = this.times.length * 2;
    for (const name of ["times", "indices", "kinds"]) {
      const bigger = new this[name].constructor(size);
      bigger.set(this[name]);
      this[name] = bigger;
    }
  }

  /** Entries come in recorded order, which is time order within a lane nearly always; when it is not,
   * the lane is sorted by (time, entry number) before anyone searches it. */
  ensureSorted() {
    if (this.sorted) {
      return;
    }
    const order = Array.from({length: this.length}, (_, i) => i);
    order.sort((a, b) => this.times[a] - this.times[b] || this.indices[a] - this.indices[b]);
    const times = this.times.slice(0, this.length);
    const indices = this.indices.slice(0, this.length);
    const kinds = this.kinds.slice(0, this.length);
    order.forEach((from, to) => {
      this.times[to] = times[from];
      this.indices[to] = indices[from];
      this.kinds[to] = kinds[from];
    });
    this.sorted = true;
  }

  /** The first position whose time is at or after `time` (this.length when none). */
  firstAtOrAfter(time) {
    this.ensureSorted();
    let low = 0;
    let high = this.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.times[middle] < time) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    return low;
  }

  /** The position of the entry nearest to `time` (-1 in an empty lane); of several at that entry's
   * time (or at equal distance), the first. */
  nearest(time) {
    if (!this.length) {
      return -1;
    }
    const after = this.firstAtOrAfter(time);
    let chosen;
    if (after === this.length || (after > 0 && time - this.times[after - 1] <= this.times[after] - time)) {
      chosen = this.times[after - 1];
    } else {
      chosen = this.times[after];
    }
    return this.firstAtOrAfter(chosen);
  }

  /** The position of entry `index` in this lane, or -1. */
  positionOf(index, time) {
    for (let position = this.firstAtOrAfter(time); position < this.length && this.times[position] === time;
      position++) {
      if (this.indices[position] === index) {
        return position;
      }
    }
    return -1;
  }

  /** Milliseconds since the lane's previous entry (null for its first). */
  gapBefore(position) {
    return position > 0 ? this.times[position] - this.times[position - 1] : null;
  }
}

export class TimelineData {
  constructor(protocol) {
    this.protocol = protocol;
    this.entries = [];
    this.count = 0;
    this.lanes = [];
    this.laneByKey = new Map();
    this.endTime = 0;
  }

  /** Adds the entries of a page that starts at entry number `offset`; entries already held (a
   * reconnected push channel sending some again) are skipped. Returns how many were new. */
  add(entries, offset) {
    let added = 0;
    entries.forEach((entry, i) => {
      const index = offset + i;
      if (this.entries[index] !== undefined) {
        return;
      }
      this.entries[index] = entry;
      const time = Number(entry.relativeMs) || 0;
      this.laneFor(entry).push(time, index, kindOf(entry, this.protocol));
      this.endTime = Math.max(this.endTime, time);
      added++;
    });
    this.count += added;
    return added;
  }

  laneFor(entry) {
    const [connection, direction] = placeOf(entry, this.protocol);
    const key = laneKey(connection, direction);
    let lane = this.laneByKey.get(key);
    if (!lane) {
      lane = new Lane(connection, direction);
      this.laneByKey.set(key, lane);
      this.lanes.push(lane);
      this.lanes.sort((a, b) => a.connection - b.connection || DIRECTION_ORDER[a.direction] - DIRECTION_ORDER[b.direction]);
    }
    return lane;
  }

  /** Where entry `index` is: {lane, laneIndex, position}, or null when it is not loaded. */
  locate(index) {
    const entry = this.entries[index];
    if (entry === undefined) {
      return null;
    }
    const [connection, direction] = placeOf(entry, this.protocol);
    const lane = this.laneByKey.get(laneKey(connection, direction));
    const position = lane.positionOf(index, Number(entry.relativeMs) || 0);
    return position < 0 ? null : {lane, laneIndex: this.lanes.indexOf(lane), position};
  }
}
