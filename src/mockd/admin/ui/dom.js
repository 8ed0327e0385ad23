// Building the page from data without ever parsing it as HTML: every string goes in as a text node.
// (Recorded frames, names, headers and paths are attacker-controlled; nothing here takes markup.)

/** An element: `attributes` are set with setAttribute (never an "on…" handler, never "style"),
 * `children` are nodes or strings (strings become text nodes). */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) {
      continue;
    }
    if (/^on/i.test(name) || name === "style") {
      throw new Error("el() sets no event handler or style attribute: " + name);
    }
    element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child)))));
  return element;
}

/** Replaces the children of `parent` with `children` (nodes or strings, as for el()). */
export function fill(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined)
    .map((child) => (child instanceof Node ? child : document.createTextNode(String(child)))));
}

export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/** A two-column table of `[name, value, testId?]` rows (a definition list keeps long values
 * readable); rows without a value are left out. */
export function pairs(rows, testId) {
  const list = el("dl", {class: "pairs", "data-testid": testId});
  for (const [name, value, valueTestId] of rows) {
    if (value === undefined || value === null || value === "") {
      continue;
    }
    list.append(el("dt", {}, name), el("dd", {"data-testid": valueTestId}, value));
  }
  return list;
}

/** `pairs` of an object's entries (headers, a query), or "none". */
export function mapping(object, testId) {
  const entries = Object.entries(object || {});
  if (!entries.length) {
    return el("p", {class: "muted", "data-testid": testId}, "none");
  }
  return pairs(entries, testId);
}

/** Shows `message` (text) in the page's status line; `kind` "error" or "info". */
export function announce(message, kind = "info") {
  const line = byTestId("message");
  line.className = "message " + kind;
  line.textContent = message;
  if (kind === "error") {
    document.body.dataset.lastError = message;
  }
}

/** A button that must be clicked twice within a few seconds (an inline confirmation, no dialog). */
export function confirmingButton(label, confirmLabel, testId, action) {
  const button = el("button", {type: "button", "data-testid": testId}, label);
  let armed = null;
  button.addEventListener("click", () => {
    if (armed === null) {
      button.textContent = confirmLabel;
      button.classList.add("armed");
      armed = setTimeout(() => {
        armed = null;
        button.textContent = label;
        button.classList.remove("armed");
      }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.textContent = label;
    button.classList.remove("armed");
    action();
  });
  return button;
}
