// The timeline drawn on a <canvas>: a time axis, one row per lane, one mark per entry at its
// relativeMs. Only what is visible is drawn, and at most one mark of a kind per pixel column, so
// 100,000 entries cost a loop over typed arrays per frame. The canvas sits (sticky) in a spacer as
// large as the whole timeline, inside a native scroll container: scrolling is the browser's own
// (wheel, shift+wheel, scrollbars, touch); Ctrl+wheel and the buttons zoom around a point.

import {axisLabel} from "./format.js";
import {KINDS} from "./lanes.js";

const AXIS_HEIGHT = 26;
const LANE_HEIGHT = 24;
const GUTTER = 168; // px of lane labels on the left
const RIGHT_PAD = 24;
const HIT_SLOP = 6; // px around a mark that still selects it
const DRAG_THRESHOLD = 4; // px a press may move and still count as a click
const MAX_PX_PER_MS = 200;
const MAX_CONTENT_WIDTH = 16_000_000; // px: below the browser's largest layout size
const MIN_TICK_SPACING = 90; // px between two labelled ticks
const MAX_HEIGHT = 432; // px of lanes shown at once (18 lanes); more scroll
const SCROLLBAR_ROOM = 18; // px left below the lanes for a horizontal scrollbar

export const MARK_STYLES = {
  text: {colour: "#2563eb", shape: "bar"},
  binary: {colour: "#ea580c", shape: "block"},
  ping: {colour: "#16a34a", shape: "up"},
  pong: {colour: "#0d9488", shape: "down"},
  close: {colour: "#dc2626", shape: "post"},
  event: {colour: "#7c3aed", shape: "bar"},
  comment: {colour: "#6b7280", shape: "dot"},
  retry: {colour: "#ca8a04", shape: "diamond"},
  exchange: {colour: "#0891b2", shape: "block"},
};
const STYLE_BY_CODE = KINDS.map((name) => MARK_STYLES[name]);

export function laneLabel(lane) {
  if (lane.direction === "http") {
    return "HTTP exchanges";
  }
  const way = lane.direction === "c2s" ? "client → server" : "server → client";
  return "conn " + lane.connection + " · " + way;
}

function niceStep(minimumMs) {
  const power = 10 ** Math.floor(Math.log10(Math.max(minimumMs, 1e-3)));
  for (const factor of [1, 2, 5, 10]) {
    if (factor * power >= minimumMs) {
      return factor * power;
    }
  }
  return 10 * power;
}

export class TimelineView {
  /** `data`: a TimelineData; `onSelect(index, position info)` is called when a mark is clicked. */
  constructor({scroller, canvas, spacer, data, onSelect}) {
    this.scroller = scroller;
    this.canvas = canvas;
    this.spacer = spacer;
    this.data = data;
    this.onSelect = onSelect;
    this.context = canvas.getContext("2d");
    this.pxPerMs = 1;
    this.fitted = true; // follows the recording's length until the user zooms
    this.knownDuration = 0;
    this.selected = null; // entry number
    this.highlighted = null; // entry number (the replay's next frame)
    this.pending = false;
    this.listen();
  }

  // --- geometry ---------------------------------------------------------------------------------

  get duration() {
    return Math.max(this.data.endTime, this.knownDuration, 1);
  }

  get width() {
    return this.scroller.clientWidth;
  }

  get height() {
    return this.scroller.clientHeight;
  }

  fitPxPerMs() {
    return Math.max((this.width - GUTTER - RIGHT_PAD) / this.duration, 1e-9);
  }

  maxPxPerMs() {
    return Math.max(Math.min(MAX_PX_PER_MS, MAX_CONTENT_WIDTH / this.duration), this.fitPxPerMs());
  }

  xOf(time) {
    return GUTTER + time * this.pxPerMs - this.scroller.scrollLeft;
  }

  timeAt(x) {
    return (x - GUTTER + this.scroller.scrollLeft) / this.pxPerMs;
  }

  laneTop(laneIndex) {
    return AXIS_HEIGHT + laneIndex * LANE_HEIGHT - this.scroller.scrollTop;
  }

  laneAt(y) {
    if (y < AXIS_HEIGHT) {
      return -1;
    }
    const index = Math.floor((y - AXIS_HEIGHT + this.scroller.scrollTop) / LANE_HEIGHT);
    return index < this.data.lanes.length ? index : -1;
  }

  updateExtent() {
    const wanted = Math.min(AXIS_HEIGHT + this.data.lanes.length * LANE_HEIGHT + SCROLLBAR_ROOM, MAX_HEIGHT);
    if (this.scroller.style.height !== wanted + "px") {
      this.scroller.style.setProperty("height", wanted + "px");
    }
    if (this.fitted) {
      this.pxPerMs = this.fitPxPerMs();
    }
    const width = Math.max(Math.ceil(GUTTER + this.duration * this.pxPerMs + RIGHT_PAD), this.width);
    const height = Math.max(AXIS_HEIGHT + this.data.lanes.length * LANE_HEIGHT, this.height);
    this.spacer.style.setProperty("width", width + "px");
    this.spacer.style.setProperty("height", height + "px");
  }

  // --- zoom and scroll --------------------------------------------------------------------------

  setDuration(ms) {
    this.knownDuration = Math.max(0, Number(ms) || 0);
    this.requestDraw();
  }

  /** Zooms by `factor` keeping the time under canvas x `anchorX` where it is. */
  zoomBy(factor, anchorX = GUTTER + (this.width - GUTTER) / 2) {
    const anchorTime = this.timeAt(anchorX);
    const fit = this.fitPxPerMs();
    this.pxPerMs = Math.min(Math.max(this.pxPerMs * factor, fit), this.maxPxPerMs());
    this.fitted = this.pxPerMs <= fit;
    this.updateExtent();
    this.scroller.scrollLeft = GUTTER + anchorTime * this.pxPerMs - anchorX;
    this.drawNow();
  }

  fit() {
    this.fitted = true;
    this.updateExtent();
    this.scroller.scrollLeft = 0;
    this.drawNow();
  }

  /** Scrolls so that entry `index` is in view (centred when it was not). */
  reveal(index) {
    const place = this.data.locate(index);
    if (!place) {
      return null;
    }
    this.updateExtent();
    const x = this.xOf(place.lane.times[place.position]);
    if (x < GUTTER + HIT_SLOP || x > this.width - HIT_SLOP) {
      this.scroller.scrollLeft += x - (GUTTER + (this.width - GUTTER) / 2);
    }
    const top = this.laneTop(place.laneIndex);
    if (top < AXIS_HEIGHT || top + LANE_HEIGHT > this.height) {
      this.scroller.scrollTop += top - AXIS_HEIGHT - LANE_HEIGHT;
    }
    this.drawNow();
    return place;
  }

  /** The canvas point (CSS px) at the centre of entry `index`'s mark, scrolled into view; null when
   * it is not loaded. (A test hook: a test clicks there and the page's own hit test answers.) */
  pointOf(index) {
    const place = this.reveal(index);
    if (!place) {
      return null;
    }
    return {x: this.xOf(place.lane.times[place.position]), y: this.laneTop(place.laneIndex) + LANE_HEIGHT / 2};
  }

  // --- input ------------------------------------------------------------------------------------

  listen() {
    this.scroller.addEventListener("scroll", () => this.requestDraw(), {passive: true});
    this.scroller.addEventListener("wheel", (event) => this.wheel(event), {passive: false});
    this.canvas.addEventListener("pointerdown", (event) => this.press(event));
    this.canvas.addEventListener("keydown", (event) => this.key(event));
    this.resizes = new ResizeObserver(() => {
      this.updateExtent();
      this.drawNow();
    });
    this.resizes.observe(this.scroller);
  }

  destroy() {
    this.resizes.disconnect();
  }

  wheel(event) {
    if (!event.ctrlKey && !event.metaKey) {
      return; // plain wheel: the browser scrolls
    }
    event.preventDefault();
    const box = this.canvas.getBoundingClientRect();
    this.zoomBy(Math.exp(-event.deltaY * 0.002), event.clientX - box.left);
  }

  press(event) {
    if (event.button !== 0) {
      return;
    }
    const start = {x: event.clientX, y: event.clientY, left: this.scroller.scrollLeft, top: this.scroller.scrollTop};
    let dragged = false;
    this.canvas.setPointerCapture(event.pointerId);
    const move = (moved) => {
      const dx = moved.clientX - start.x;
      const dy = moved.clientY - start.y;
      dragged = dragged || Math.hypot(dx, dy) > DRAG_THRESHOLD;
      if (dragged) {
        this.scroller.scrollLeft = start.left - dx;
        this.scroller.scrollTop = start.top - dy;
      }
    };
    const release = (released) => {
      this.canvas.removeEventListener("pointermove", move);
      this.canvas.removeEventListener("pointerup", release);
      this.canvas.removeEventListener("pointercancel", release);
      if (!dragged && released.type === "pointerup") {
        const box = this.canvas.getBoundingClientRect();
        this.click(released.clientX - box.left, released.clientY - box.top);
      }
    };
    this.canvas.addEventListener("pointermove", move);
    this.canvas.addEventListener("pointerup", release);
    this.canvas.addEventListener("pointercancel", release);
  }

  /** Selects the mark nearest to canvas point (x, y) when it is within HIT_SLOP px. */
  click(x, y) {
    const laneIndex = this.laneAt(y);
    if (laneIndex < 0 || x < GUTTER) {
      return;
    }
    const lane = this.data.lanes[laneIndex];
    const position = lane.nearest(this.timeAt(x));
    if (position >= 0 && Math.abs(this.xOf(lane.times[position]) - x) <= HIT_SLOP) {
      this.select(lane.indices[position]);
    }
  }

  select(index) {
    this.selected = index;
    const place = this.reveal(index);
    if (place) {
      this.onSelect(index, place);
    }
  }

  key(event) {
    const actions = {
      "+": () => this.zoomBy(2), "=": () => this.zoomBy(2), "-": () => this.zoomBy(0.5), "0": () => this.fit(),
      ArrowLeft: () => this.step(-1), ArrowRight: () => this.step(1),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  }

  /** Selects the previous (-1) or next (+1) mark of the selected mark's lane. */
  step(direction) {
    const place = this.selected === null ? null : this.data.locate(this.selected);
    if (!place) {
      return;
    }
    const position = place.position + direction;
    if (position >= 0 && position < place.lane.length) {
      this.select(place.lane.indices[position]);
    }
  }

  setHighlight(index) {
    this.highlighted = index;
    if (index !== null) {
      this.reveal(index);
    } else {
      this.requestDraw();
    }
  }

  // --- drawing ----------------------------------------------------------------------------------

  requestDraw() {
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => this.drawNow());
    }
  }

  drawNow() {
    this.pending = false;
    this.updateExtent();
    const ratio = window.devicePixelRatio || 1;
    const width = this.width;
    const height = this.height;
    if (this.canvas.width !== Math.round(width * ratio) || this.canvas.height !== Math.round(height * ratio)) {
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.canvas.style.setProperty("width", width + "px");
      this.canvas.style.setProperty("height", height + "px");
    }
    const context = this.context;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    this.drawLanes(context, width, height);
    this.drawAxis(context, width);
    document.body.dataset.timelineMarks = String(this.data.count);
  }

  visibleLanes(height) {
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / LANE_HEIGHT));
    const last = Math.min(this.data.lanes.length, first + Math.ceil(height / LANE_HEIGHT) + 1);
    return [first, last];
  }

  drawLanes(context, width, height) {
    const [first, last] = this.visibleLanes(height);
    const startTime = this.timeAt(GUTTER - HIT_SLOP);
    const endTime = this.timeAt(width + HIT_SLOP);
    for (let laneIndex = first; laneIndex < last; laneIndex++) {
      const lane = this.data.lanes[laneIndex];
      const top = this.laneTop(laneIndex);
      context.fillStyle = laneIndex % 2 ? "#f8fafc" : "#eef2f7";
      context.fillRect(0, top, width, LANE_HEIGHT);
      context.save();
      context.beginPath();
      context.rect(GUTTER, top, width - GUTTER, LANE_HEIGHT);
      context.clip();
      this.drawMarks(context, lane, top, startTime, endTime);
      this.drawEmphasis(context, lane, top);
      context.restore();
      context.fillStyle = "#1f2937";
      context.font = "12px system-ui, sans-serif";
      context.textBaseline = "middle";
      context.fillText(laneLabel(lane), 8, top + LANE_HEIGHT / 2, GUTTER - 16);
    }
  }

  drawMarks(context, lane, top, startTime, endTime) {
    const from = lane.firstAtOrAfter(startTime);
    const to = lane.firstAtOrAfter(endTime);
    const lastColumn = new Float64Array(STYLE_BY_CODE.length).fill(-1);
    const columns = STYLE_BY_CODE.map(() => []);
    for (let position = from; position < to; position++) {
      const kind = lane.kinds[position];
      const column = Math.round(this.xOf(lane.times[position]));
      if (column !== lastColumn[kind]) {
        lastColumn[kind] = column;
        columns[kind].push(column);
      }
    }
    const wide = this.pxPerMs >= 4;
    columns.forEach((xs, kind) => {
      if (xs.length) {
        context.fillStyle = STYLE_BY_CODE[kind].colour;
        context.strokeStyle = STYLE_BY_CODE[kind].colour;
        drawShapes(context, STYLE_BY_CODE[kind].shape, xs, top, wide);
      }
    });
  }

  drawEmphasis(context, lane, top) {
    for (const [index, colour] of [[this.highlighted, "#db2777"], [this.selected, "#111827"]]) {
      if (index === null) {
        continue;
      }
      const place = this.data.locate(index);
      if (place && place.lane === lane) {
        const x = Math.round(this.xOf(lane.times[place.position]));
        context.strokeStyle = colour;
        context.lineWidth = 2;
        context.strokeRect(x - 5, top + 2, 10, LANE_HEIGHT - 4);
        context.lineWidth = 1;
      }
    }
  }

  drawAxis(context, width) {
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, width, AXIS_HEIGHT);
    context.fillStyle = "#e5e7eb";
    context.fillRect(0, AXIS_HEIGHT - 1, width, 1);
    const step = niceStep(MIN_TICK_SPACING / this.pxPerMs);
    const first = Math.max(0, Math.floor(this.timeAt(GUTTER) / step) * step);
    context.fillStyle = "#4b5563";
    context.font = "11px system-ui, sans-serif";
    context.textBaseline = "middle";
    for (let time = first; this.xOf(time) < width; time += step) {
      const x = Math.round(this.xOf(time));
      if (x >= GUTTER) {
        context.fillRect(x, AXIS_HEIGHT - 7, 1, 6);
        context.fillText(axisLabel(time), x + 3, AXIS_HEIGHT / 2 - 2);
      }
    }
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, GUTTER, AXIS_HEIGHT - 1);
    context.fillStyle = "#6b7280";
    context.fillText("time since start", 8, AXIS_HEIGHT / 2);
  }
}

function drawShapes(context, shape, xs, top, wide) {
  const middle = top + LANE_HEIGHT / 2;
  const barWidth = wide ? 3 : 1;
  switch (shape) {
    case "bar":
      xs.forEach((x) => context.fillRect(x - (barWidth >> 1), top + 6, barWidth, LANE_HEIGHT - 12));
      break;
    case "block":
      xs.forEach((x) => context.fillRect(x - (barWidth >> 1) - 1, top + 4, barWidth + 2, LANE_HEIGHT - 8));
      break;
    case "post":
      xs.forEach((x) => {
        context.fillRect(x - 1, top + 2, 2, LANE_HEIGHT - 4);
        context.fillRect(x - 4, top + 2, 8, 2);
      });
      break;
    case "dot":
      context.beginPath();
      xs.forEach((x) => {
        context.moveTo(x + 2.5, middle);
        context.arc(x, middle, 2.5, 0, 2 * Math.PI);
      });
      context.fill();
      break;
    default:
      polygons(context, shape, xs, middle);
  }
}

const POLYGONS = {
  up: [[0, -6], [5, 4], [-5, 4]],
  down: [[0, 6], [5, -4], [-5, -4]],
  diamond: [[0, -6], [5, 0], [0, 6], [-5, 0]],
};

function polygons(context, shape, xs, middle) {
  const corners = POLYGONS[shape];
  context.beginPath();
  xs.forEach((x) => {
    corners.forEach(([dx, dy], i) => (i ? context.lineTo(x + dx, middle + dy) : context.moveTo(x + dx, middle + dy)));
    context.closePath();
  });
  context.fill();
}
