// Replaying the open recording from the page: start a replay in any mode with its options (docs/replay.md),
// then watch it (GET /replay/{id} every 250 ms while it is open and not finished) and drive it:
// advance (count or until) for triggered replays, pause and resume for pure ones, cancel. The server
// frame it sends next is highlighted on the timeline.

import {ApiError, post, remove, get, recordingPath, replayPath} from "./api.js";
import {announce, byTestId, fill} from "./dom.js";

const POLL_MS = 250;
const FINISHED = new Set(["complete", "aborted", "error", "expired"]);
const NUMBER_OPTIONS = ["timingScale", "timeout", "connection", "expiresAfter"];
const FLAG_OPTIONS = ["strictMatching", "autoAdvanceOnConnect"];

/** The options of the replay form, only those that were given and apply to the chosen mode. */
export function replayOptions(form) {
  const mode = form.elements.mode.value;
  const options = {mode};
  const applies = (name) => {
    const label = form.elements[name].closest("[data-modes]");
    return !label || label.dataset.modes.split(" ").includes(mode);
  };
  for (const name of NUMBER_OPTIONS) {
    const raw = form.elements[name].value.trim();
    if (raw !== "" && applies(name)) {
      options[name] = Number(raw);
    }
  }
  for (const name of FLAG_OPTIONS) {
    if (form.elements[name].checked && applies(name)) {
      options[name] = true;
    }
  }
  const path = form.elements.path.value.trim();
  if (path) {
    options.path = path;
  }
  return options;
}

function showModeOptions(form) {
  const mode = form.elements.mode.value;
  form.querySelectorAll("[data-modes]").forEach((label) => {
    label.classList.toggle("hidden", !label.dataset.modes.split(" ").includes(mode));
  });
}

export class ReplayPanel {
  constructor({recordingId, timeline}) {
    this.recordingId = recordingId;
    this.timeline = timeline;
    this.replay = null; // {id, mode}
    this.status = null;
    this.timer = null;
    this.form = byTestId("replay-form");
    this.abort = new AbortController();
    this.wire();
    this.render();
  }

  wire() {
    const signal = this.abort.signal;
    const on = (testId, type, handler) => byTestId(testId).addEventListener(type, handler, {signal});
    showModeOptions(this.form);
    this.form.addEventListener("change", () => showModeOptions(this.form), {signal});
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    }, {signal});
    on("advance", "click", () => this.advance());
    on("pause", "click", () => this.act((id) => post(replayPath(id, "/pause"))));
    on("resume", "click", () => this.act((id) => post(replayPath(id, "/resume"))));
    on("replay-cancel", "click", () => this.act((id) => remove(replayPath(id))));
  }

  close() {
    this.abort.abort();
    clearTimeout(this.timer);
    this.timeline.setHighlight(null);
  }

  async start() {
    const options = replayOptions(this.form);
    try {
      const started = await post(recordingPath(this.recordingId, "/replay"), options);
      this.replay = {id: started.sessionId, mode: options.mode};
      // shown only should its first status read fail: that read (at once) brings the plan's next entry
      this.status = {status: started.status, currentFrame: 0, totalFrames: 0, mismatches: 0, mode: options.mode};
      announce(`Replay ${started.sessionId.slice(0, 12)} is waiting for the next client on its path.`);
      await this.poll();
    } catch (error) {
      announce(error.message, "error");
    }
  }

  async advance() {
    const count = byTestId("advance-count").value.trim();
    const until = byTestId("advance-until").value;
    const body = until ? {until} : count ? {count: Number(count)} : {};
    await this.act((id) => post(replayPath(id, "/advance"), body));
  }

  /** `call(replayId)` on the open replay, then its status read again. */
  async act(call) {
    if (!this.replay) {
      return;
    }
    try {
      await call(this.replay.id);
    } catch (error) {
      announce(error.message, "error");
    }
    await this.refresh();
  }

  async refresh() {
    if (!this.replay) {
      return;
    }
    try {
      this.status = await get(replayPath(this.replay.id), {signal: this.abort.signal});
    } catch (error) {
      if (error instanceof ApiError) {
        announce(error.message, "error");
      } else if (error.name !== "AbortError") {
        throw error;
      }
    }
    this.render();
  }

  async poll() {
    clearTimeout(this.timer);
    await this.refresh();
    if (this.replay && !this.abort.signal.aborted && !FINISHED.has(this.status.status)) {
      this.timer = setTimeout(() => this.poll(), POLL_MS);
    }
  }

  /** The entry the replay sends next (null when none, or when it has finished). */
  nextEntry() {
    if (!this.replay || !this.status || FINISHED.has(this.status.status)) {
      return null;
    }
    return this.status.nextEntry ?? null; // the server's plan says (GET /replay/{id})
  }

  render() {
    const state = byTestId("replay-state");
    state.classList.toggle("hidden", !this.replay);
    if (!this.replay) {
      return;
    }
    const status = this.status;
    fill(byTestId("replay-id"), this.replay.id);
    fill(byTestId("replay-status"), status.status);
    fill(byTestId("replay-current"), `${status.currentFrame} of ${status.totalFrames} sent`);
    fill(byTestId("replay-mismatches"), String(status.mismatches ?? 0));
    fill(byTestId("replay-client"), status.client || "none yet");
    fill(byTestId("replay-path"), status.path || "");
    fill(byTestId("replay-error"), status.error || "");
    state.dataset.status = status.status;
    state.dataset.currentFrame = String(status.currentFrame);
    const triggered = this.replay.mode === "triggered";
    byTestId("advance-controls").classList.toggle("hidden", !triggered);
    byTestId("pause").classList.toggle("hidden", this.replay.mode !== "pure");
    byTestId("resume").classList.toggle("hidden", this.replay.mode !== "pure");
    const next = this.nextEntry();
    state.dataset.nextEntry = next === null ? "" : String(next);
    fill(byTestId("replay-next"), next === null ? "—" : `entry #${next + 1}`);
    if (next !== this.timeline.highlighted) {
      this.timeline.setHighlight(next);
    }
  }
}
