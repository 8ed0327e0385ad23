// The recordings list: the CLI's columns (id, name, protocol, path, status, frames, duration, size),
// the list's filters, soft-deleted recordings marked as such; open, export, convert and delete on
// each row, vacuum for all.

import {download, get, post, query, recordingPath, remove} from "./api.js";
import {announce, byTestId, confirmingButton, el, fill} from "./dom.js";
import {humanDuration, humanSize, shortId} from "./format.js";

const PAGE = 100;
const FILTER_DELAY_MS = 250;

function filters() {
  return {
    protocol: byTestId("filter-protocol").value,
    status: byTestId("filter-status").value,
    path: byTestId("filter-path").value.trim(),
    name: byTestId("filter-name").value.trim(),
    includeDeleted: byTestId("filter-deleted").checked ? "true" : "",
  };
}

/** The convert options of the list's "convert options" panel (docs/replay.md), those that were set. */
export function convertOptions() {
  const form = byTestId("convert-form");
  const options = {};
  const text = (name) => form.elements[name].value.trim();
  const list = (name) => text(name).split(",").map((item) => item.trim()).filter(Boolean);
  if (form.elements.simplifyTiming.checked) {
    options.simplifyTiming = true;
  }
  for (const name of ["minDelay", "maxDelay", "connection"]) {
    if (text(name)) {
      options[name] = Number(text(name));
    }
  }
  if (!form.elements.includeClientMessages.checked) {
    options.includeClientMessages = false;
  }
  if (form.elements.strictMatching.checked) {
    options.strictMatching = true;
  }
  if (text("path")) {
    options.path = text("path");
  }
  for (const name of ["matchOn", "ignoreQuery", "ignoreBody"]) {
    if (list(name).length) {
      options[name] = list(name);
    }
  }
  return options;
}

export class RecordingsList {
  constructor({onOpen}) {
    this.onOpen = onOpen;
    this.offset = 0;
    this.total = 0;
    this.timer = null;
    this.generation = 0;
    this.wire();
  }

  wire() {
    const again = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.offset = 0;
        this.load();
      }, FILTER_DELAY_MS);
    };
    for (const id of ["filter-protocol", "filter-status", "filter-deleted"]) {
      byTestId(id).addEventListener("change", again);
    }
    for (const id of ["filter-path", "filter-name"]) {
      byTestId(id).addEventListener("input", again);
    }
    byTestId("list-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      this.offset = 0;
      this.load();
    });
    byTestId("list-refresh").addEventListener("click", () => this.load());
    byTestId("list-previous").addEventListener("click", () => this.turn(-PAGE));
    byTestId("list-next").addEventListener("click", () => this.turn(PAGE));
    byTestId("vacuum-slot").replaceWith(confirmingButton("Vacuum deleted", "Really remove them?", "vacuum",
      () => this.vacuum()));
  }

  turn(by) {
    this.offset = Math.max(0, Math.min(this.offset + by, Math.max(0, this.total - 1)));
    this.load();
  }

  async load() {
    const generation = ++this.generation;
    document.body.dataset.listReady = "0";
    try {
      const answer = await get("/stream-recordings" + query({...filters(), limit: PAGE, offset: this.offset}));
      if (generation === this.generation) {
        this.render(answer);
      }
    } catch (error) {
      announce(error.message, "error");
    }
  }

  render(answer) {
    this.total = answer.total;
    const rows = answer.recordings.map((summary) => this.row(summary));
    fill(byTestId("recordings-body"), rows.length ? rows
      : el("tr", {}, el("td", {colspan: 9, class: "muted"}, "No recordings match.")));
    const last = Math.min(this.offset + answer.recordings.length, answer.total);
    fill(byTestId("list-count"), answer.total ? `${this.offset + 1}–${last} of ${answer.total}` : "0 recordings");
    byTestId("list-previous").disabled = this.offset === 0;
    byTestId("list-next").disabled = last >= answer.total;
    document.body.dataset.listCount = String(answer.recordings.length);
    document.body.dataset.listReady = "1";
  }

  row(summary) {
    const deleted = summary.deleted === true;
    const open = el("button", {type: "button", class: "link", "data-testid": "row-open", title: summary.id},
      shortId(summary.id));
    open.addEventListener("click", () => this.onOpen(summary.id));
    const actions = el("td", {class: "actions"},
      this.action("Export", "row-export", () => this.exportRecording(summary.id)),
      this.action("Convert", "row-convert", () => this.convert(summary.id)));
    if (!deleted) {
      actions.append(confirmingButton("Delete", "Really delete?", "row-delete", () => this.delete(summary.id)));
    }
    return el("tr", {"data-testid": "recording-row", "data-id": summary.id, "data-deleted": deleted ? "true" : "false",
                     class: deleted ? "deleted" : ""},
      el("td", {class: "id"}, open),
      el("td", {"data-testid": "row-name"}, summary.name),
      el("td", {}, summary.protocol),
      el("td", {class: "path", "data-testid": "row-path"}, summary.path),
      el("td", {"data-testid": "row-status"}, summary.status, deleted ? el("span", {class: "badge deleted"}, "deleted") : null),
      el("td", {class: "number", "data-testid": "row-frames"}, String(summary.frameCount)),
      el("td", {class: "number"}, humanDuration(summary.duration)),
      el("td", {class: "number"}, humanSize(summary.fileSize)),
      actions);
  }

  action(label, testId, handler) {
    const button = el("button", {type: "button", "data-testid": testId}, label);
    button.addEventListener("click", handler);
    return button;
  }

  async exportRecording(id) {
    try {
      const name = await download(recordingPath(id, "/export"), {}, id + ".json");
      announce(`Exported ${name}.`);
    } catch (error) {
      announce(error.message, "error");
    }
  }

  async convert(id) {
    try {
      const name = await download(recordingPath(id, "/convert"), convertOptions(), shortId(id) + "-mocks.json");
      announce(`Converted to ${name}.`);
    } catch (error) {
      announce(error.message, "error");
    }
  }

  async delete(id) {
    try {
      await remove(recordingPath(id));
      announce(`Deleted ${shortId(id)} (soft: vacuum removes it for good).`);
    } catch (error) {
      announce(error.message, "error");
    }
    await this.load();
  }

  async vacuum() {
    try {
      const answer = await post("/stream-recordings/vacuum", {});
      announce(`Vacuum removed ${answer.removed} recording(s), ${humanSize(answer.freedBytes)}.`);
    } catch (error) {
      announce(error.message, "error");
    }
    await this.load();
  }
}
