// The dashboard's wiring: the token (fragment → sessionStorage, or the form shown on a 401), the
// views (#list, #live, #recording=ID) and the read-only hooks tests and benchmarks read.

import {onUnauthorized, rememberToken, storedToken, takeTokenFromFragment} from "./api.js";
import {announce, byTestId} from "./dom.js";
import {KINDS} from "./lanes.js";
import {RecordingsList} from "./list.js";
import {RecordingView} from "./recording.js";
import {SessionsView} from "./sessions.js";

const timings = {}; // ms since navigation: `ready` (first page drawn), `loaded` (every entry drawn)
let recording = null;

function openRecording(id) {
  location.hash = "recording=" + encodeURIComponent(id);
}

const list = new RecordingsList({onOpen: openRecording});
const sessions = new SessionsView({onOpen: openRecording});

function showView(name) {
  document.querySelectorAll("main > section[data-view]").forEach((section) => {
    section.classList.toggle("hidden", section.dataset.view !== name);
  });
  document.querySelectorAll("nav a[data-nav]").forEach((link) => {
    link.classList.toggle("current", link.dataset.nav === name);
  });
  document.body.dataset.view = name;
}

function leaveRecording() {
  recording?.close();
  recording = null;
}

async function route() {
  const params = takeTokenFromFragment();
  sessions.hide();
  if (params.has("recording")) {
    const id = params.get("recording");
    if (recording?.id === id) {
      return;
    }
    leaveRecording();
    showView("recording");
    recording = new RecordingView(id, timings);
    try {
      await recording.open();
    } catch (error) {
      if (error.name !== "AbortError") {
        announce(error.message, "error");
      }
    }
    return;
  }
  leaveRecording();
  if (params.has("live")) {
    showView("live");
    sessions.show();
  } else {
    showView("list");
    await list.load();
  }
}

function reload() {
  leaveRecording();
  route();
}

function askForToken() {
  const panel = byTestId("token-panel");
  if (!panel.classList.contains("hidden")) {
    return;
  }
  panel.classList.remove("hidden");
  byTestId("token-message").textContent = storedToken()
    ? "The admin API refused the token this tab holds. Enter the right one."
    : "This admin API needs a token (mockd serve --admin-token). Enter it, or open the page with #token=… in its address.";
  byTestId("token-input").focus();
}

function wireToken() {
  onUnauthorized(askForToken);
  byTestId("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byTestId("token-input");
    rememberToken(input.value.trim());
    input.value = "";
    byTestId("token-panel").classList.add("hidden");
    announce("Token kept for this tab.");
    reload();
  });
  byTestId("forget-token").addEventListener("click", () => {
    rememberToken("");
    announce("Token forgotten.");
    reload();
  });
}

function exposeHooks() {
  window.__mockdDashboard = Object.freeze({
    get view() {
      return document.body.dataset.view;
    },
    get marks() {
      return recording?.data?.count ?? 0;
    },
    get lanes() {
      return (recording?.data?.lanes ?? []).map((lane) => ({connection: lane.connection, direction: lane.direction,
                                                             marks: lane.length}));
    },
    get selected() {
      return recording?.selected ? structuredClone(recording.selected) : null;
    },
    get replayNext() {
      return recording?.timeline?.highlighted ?? null;
    },
    get timings() {
      return {...timings};
    },
    /** The kind entry `index`'s mark is drawn as (lanes.js KINDS), null when it is not on the timeline. */
    kindOf(index) {
      const place = recording?.data?.locate(index);
      return place ? KINDS[place.lane.kinds[place.position]] : null;
    },
    /** Canvas-relative point of entry `index`'s mark, scrolled into view, in page coordinates. */
    pointOf(index) {
      const point = recording?.timeline?.pointOf(index);
      if (!point) {
        return null;
      }
      const box = recording.timeline.canvas.getBoundingClientRect();
      return {x: box.left + point.x, y: box.top + point.y};
    },
  });
}

wireToken();
exposeHooks();
window.addEventListener("hashchange", route);
route();
