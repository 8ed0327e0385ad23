// One recording's page: its head (what it is, its connections), its timeline — loaded by pages when
// the recording is finished, followed over the push channel while it records — the selected entry's
// detail beside its connection's metadata, and the replay panel.

import {get, recordingPath} from "./api.js";
import {clearConnection, clearEntry, showConnection, showEntry} from "./detail.js";
import {announce, byTestId, el, fill, pairs} from "./dom.js";
import {follow} from "./follow.js";
import {humanDuration, humanSize} from "./format.js";
import {TimelineData} from "./lanes.js";
import {loadEntries} from "./pages.js";
import {ReplayPanel} from "./replay.js";
import {stopSession} from "./sessions.js";
import {TimelineView} from "./timeline.js";

const HEAD_REFRESH_MS = 1000; // at most this often, to learn of connections a live recording opened

function resetHooks() {
  const hooks = document.body.dataset;
  hooks.timelineReady = "0";
  hooks.timelineLoaded = "0";
  hooks.timelineMarks = "0";
  hooks.timelineTotal = "";
}

function timelineElements() {
  const canvas = el("canvas", {"data-testid": "timeline-canvas", tabindex: 0,
                               "aria-label": "timeline: Ctrl+wheel or +/− to zoom, arrows to step through a lane"});
  const spacer = el("div", {class: "timeline-spacer"}, canvas);
  const scroller = el("div", {class: "timeline-scroller", "data-testid": "timeline"}, spacer);
  fill(byTestId("timeline-slot"), scroller);
  return {scroller, canvas, spacer};
}

export class RecordingView {
  constructor(id, timings) {
    this.id = id;
    this.timings = timings;
    this.abort = new AbortController();
    this.head = null;
    this.data = null;
    this.timeline = null;
    this.replay = null;
    this.headFetchedAt = 0;
    this.selected = null;
  }

  async open() {
    resetHooks();
    clearEntry();
    clearConnection();
    fill(byTestId("recording-head"), el("p", {class: "muted"}, "loading…"));
    this.head = await get(recordingPath(this.id) + "?entries=false", {signal: this.abort.signal});
    this.headFetchedAt = performance.now();
    this.data = new TimelineData(this.head.protocol);
    this.timeline = new TimelineView({...timelineElements(), data: this.data,
                                      onSelect: (index, place) => this.select(index, place)});
    this.timeline.setDuration(this.head.duration);
    this.wireZoom();
    this.replay = new ReplayPanel({recordingId: this.head.id, timeline: this.timeline});
    this.renderHead();
    if (this.head.status === "recording") {
      this.followLive();
    } else {
      this.loadPages();
    }
  }

  close() {
    this.abort.abort();
    this.replay?.close();
    this.timeline?.destroy();
    resetHooks();
  }

  wireZoom() {
    const signal = this.abort.signal;
    byTestId("zoom-in").addEventListener("click", () => this.timeline.zoomBy(2), {signal});
    byTestId("zoom-out").addEventListener("click", () => this.timeline.zoomBy(0.5), {signal});
    byTestId("zoom-fit").addEventListener("click", () => this.timeline.fit(), {signal});
    byTestId("stop-session").addEventListener("click", () => stopSession(this.head.id), {signal});
  }

  renderHead() {
    const head = this.head;
    const stats = head.stats || {};
    fill(byTestId("recording-title"), head.name);
    fill(byTestId("recording-head"), pairs([
      ["id", head.id, "recording-id"],
      ["protocol", head.protocol],
      ["path", head.metadata?.path, "recording-path"],
      ["status", head.status, "recording-status"],
      ["stop reason", head.stopReason],
      ["started", head.startTime],
      ["duration", humanDuration(head.duration || 0)],
      ["entries", String(stats.frameCount ?? "")],
      ["connections", String(stats.connectionCount ?? "")],
      ["file size", stats.fileSizeBytes ? humanSize(stats.fileSizeBytes) : ""],
      ["subprotocol", head.websocket?.subprotocol],
      ["deleted", head.deleted ? "yes (soft-deleted)" : ""],
    ], "recording-fields"));
    const live = head.status === "recording";
    byTestId("stop-session").classList.toggle("hidden", !live);
    byTestId("recording-state").dataset.state = live ? "live" : head.status;
    fill(byTestId("recording-state"), live ? "● recording" : head.status);
  }

  progress(text) {
    fill(byTestId("timeline-progress"), text);
  }

  /** The first entries are on the canvas and it answers input. */
  markReady() {
    if (document.body.dataset.timelineReady !== "1") {
      this.timeline.drawNow();
      document.body.dataset.timelineReady = "1";
      this.timings.ready = performance.now();
    }
  }

  addEntries(entries, offset) {
    this.data.add(entries, offset);
    this.timeline.requestDraw();
    if (this.replay.replay) {
      this.replay.render(); // the replay's steps may have grown
    }
  }

  async loadPages() {
    const started = performance.now();
    try {
      const total = await loadEntries(this.id, (entries, offset, total) => {
        this.addEntries(entries, offset);
        document.body.dataset.timelineTotal = String(total);
        this.progress(`${this.data.count.toLocaleString("en")} of ${total.toLocaleString("en")} entries loaded`);
        this.markReady();
      }, this.abort.signal);
      this.timeline.drawNow();
      document.body.dataset.timelineLoaded = "1";
      this.timings.loaded = performance.now();
      this.progress(`${total.toLocaleString("en")} entries, loaded in ${Math.round(performance.now() - started)} ms`);
    } catch (error) {
      if (error.name !== "AbortError") {
        announce(error.message, "error");
      }
    }
  }

  async followLive() {
    try {
      await follow(this.id, {
        signal: this.abort.signal,
        onState: (state) => {
          byTestId("recording-state").dataset.follow = state;
          fill(byTestId("recording-state"), state === "live" ? "● recording (live)" : "○ reconnecting…");
          this.markReady();
        },
        onEntries: (entries, offset) => {
          this.addEntries(entries, offset);
          this.progress(`live: ${this.data.count.toLocaleString("en")} entries so far`);
          this.markReady();
        },
        onEnd: (status) => this.ended(status),
      });
    } catch (error) {
      if (error.name !== "AbortError") {
        announce(error.message, "error");
      }
    }
  }

  async ended(status) {
    this.timeline.drawNow();
    document.body.dataset.timelineLoaded = "1";
    this.progress(`${this.data.count.toLocaleString("en")} entries; the session ended (${status})`);
    await this.refreshHead(true);
  }

  async refreshHead(force = false) {
    if (!force && performance.now() - this.headFetchedAt < HEAD_REFRESH_MS) {
      return;
    }
    this.headFetchedAt = performance.now();
    try {
      this.head = await get(recordingPath(this.id) + "?entries=false", {signal: this.abort.signal});
      this.timeline.setDuration(this.head.duration);
      this.renderHead();
    } catch (error) {
      if (error.name !== "AbortError") {
        announce(error.message, "error");
      }
    }
  }

  connectionRecord(number) {
    return (this.head.connections || []).find((record) => record.connection === number);
  }

  async select(index, place) {
    const entry = this.data.entries[index];
    this.selected = {index, entry};
    showEntry(entry, index, place, this.data.protocol, this.totalText());
    const number = entry.connection ?? 1;
    if (!this.connectionRecord(number) && this.head.status === "recording") {
      await this.refreshHead();
    }
    if (this.selected.index === index && this.data.protocol !== "http") {
      showConnection(this.connectionRecord(number), number);
    }
  }

  totalText() {
    const total = Number(document.body.dataset.timelineTotal);
    return (total || this.data.count).toLocaleString("en");
  }
}
