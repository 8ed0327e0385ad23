// The live view: the recording sessions running now (GET /stream-recordings/sessions, looked at every
// 2 s while the view is shown: the list only; an opened session's frames come over the push channel),
// starting one and stopping one.

import {get, post, recordingPath} from "./api.js";
import {announce, byTestId, el, fill} from "./dom.js";
import {humanDuration, shortId} from "./format.js";

const POLL_MS = 2000;

export async function stopSession(id) {
  try {
    await post(recordingPath(id, "/stop"), {});
    announce(`Stopped ${shortId(id)}.`);
    return true;
  } catch (error) {
    announce(error.message, "error");
    return false;
  }
}

export class SessionsView {
  constructor({onOpen}) {
    this.onOpen = onOpen;
    this.timer = null;
    this.active = false;
    byTestId("start-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
  }

  show() {
    this.active = true;
    this.poll();
  }

  hide() {
    this.active = false;
    clearTimeout(this.timer);
  }

  async poll() {
    clearTimeout(this.timer);
    await this.load();
    if (this.active) {
      this.timer = setTimeout(() => this.poll(), POLL_MS);
    }
  }

  async load() {
    try {
      this.render(await get("/stream-recordings/sessions"));
    } catch (error) {
      announce(error.message, "error");
    }
  }

  render(sessions) {
    fill(byTestId("sessions-body"), sessions.length ? sessions.map((session) => this.row(session))
      : el("tr", {}, el("td", {colspan: 8, class: "muted"}, "No session is recording.")));
    document.body.dataset.sessionCount = String(sessions.length);
  }

  row(session) {
    const open = el("button", {type: "button", "data-testid": "session-open"}, "Watch");
    open.addEventListener("click", () => this.onOpen(session.id));
    const stop = el("button", {type: "button", "data-testid": "session-stop"}, "Stop");
    stop.addEventListener("click", async () => {
      await stopSession(session.id);
      await this.load();
    });
    return el("tr", {"data-testid": "session-row", "data-id": session.id},
      el("td", {class: "id", title: session.id}, shortId(session.id)),
      el("td", {}, session.name),
      el("td", {}, session.protocol),
      el("td", {class: "path"}, session.path),
      el("td", {class: "number"}, humanDuration(session.durationMs)),
      el("td", {class: "number", "data-testid": "session-frames"}, String(session.frameCount)),
      el("td", {class: "number"}, String(session.connectionCount)),
      el("td", {class: "actions"}, open, stop));
  }

  async start() {
    const form = byTestId("start-form");
    const body = {protocol: form.elements.protocol.value, path: form.elements.path.value.trim()};
    const name = form.elements.name.value.trim();
    if (name) {
      body.name = name;
    }
    try {
      const started = await post("/stream-recordings/start", body);
      announce(`Recording ${shortId(started.recordingId)} started` + (started.warning ? ": " + started.warning : "."));
      this.onOpen(started.recordingId);
    } catch (error) {
      announce(error.message, "error");
    }
  }
}
