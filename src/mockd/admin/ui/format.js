// How the page writes numbers, times and payloads: as the CLI does (mockd stream-recordings list).

export function shortId(id) {
  return String(id).slice(0, 12);
}

/** "850ms", "12.3s", "2m05s", "1h02m" (cli/output.py human_duration). */
export function humanDuration(ms) {
  if (ms < 1000) {
    return Math.round(ms) + "ms";
  }
  if (ms < 60_000) {
    return (ms / 1000).toFixed(1) + "s";
  }
  const totalSeconds = Math.floor(ms / 1000);
  const minutes = Math.floor(totalSeconds / 60);
  if (minutes < 60) {
    return minutes + "m" + String(totalSeconds % 60).padStart(2, "0") + "s";
  }
  return Math.floor(minutes / 60) + "h" + String(minutes % 60).padStart(2, "0") + "m";
}

/** "512 B", "8.2 KB", "1.2 MB" (powers of 1024; cli/output.py human_size). */
export function humanSize(size) {
  let value = size;
  for (const unit of ["B", "KB", "MB", "GB"]) {
    if (value < 1024 || unit === "GB") {
      return unit === "B" ? size + " B" : value.toFixed(1) + " " + unit;
    }
    value /= 1024;
  }
  return value.toFixed(1) + " TB";
}

/** A time offset on the axis: "0", "250ms", "1.5s", "2m05s". */
export function axisLabel(ms) {
  if (ms === 0) {
    return "0";
  }
  if (Math.abs(ms) < 1000) {
    return Number(ms.toFixed(3)) + "ms";
  }
  if (Math.abs(ms) < 60_000) {
    return Number((ms / 1000).toFixed(3)) + "s";
  }
  return humanDuration(ms);
}

export function gapLabel(ms) {
  return ms === null ? "— (first of its lane)" : ms + " ms";
}

export function bytesOfBase64(data) {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
}

const HEX_LIMIT = 64 * 1024; // bytes shown; the rest is counted

/** A hex dump: offset, 16 bytes in hex, the printable ASCII. */
export function hexDump(bytes) {
  const lines = [];
  const shown = Math.min(bytes.length, HEX_LIMIT);
  for (let offset = 0; offset < shown; offset += 16) {
    const row = bytes.subarray(offset, Math.min(offset + 16, shown));
    const hex = Array.from(row, (byte) => byte.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(row, (byte) => (byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : ".")).join("");
    lines.push(offset.toString(16).padStart(8, "0") + "  " + hex.padEnd(47) + "  " + ascii);
  }
  if (bytes.length > shown) {
    lines.push(`… ${bytes.length - shown} more bytes`);
  }
  return lines.join("\n");
}

/** The text pretty-printed when it is JSON (an object or array), else null. */
export function prettyJson(text) {
  const trimmed = typeof text === "string" ? text.trim() : "";
  if (!trimmed.startsWith("{") && !trimmed.startsWith("[")) {
    return null;
  }
  try {
    return JSON.stringify(JSON.parse(trimmed), null, 2);
  } catch {
    return null;
  }
}
