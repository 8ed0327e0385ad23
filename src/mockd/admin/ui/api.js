// The admin API as the page calls it: the token, JSON in and out, errors as ApiError, downloads.
//
// The token comes from the URL fragment (#token=T, never sent to the server), is kept in
// sessionStorage (this tab only) and removed from the address bar; or from the token form the page
// shows when the API answers 401. Every call carries it as "Authorization: Bearer T".

const TOKEN_KEY = "mockd.adminToken";
const unauthorizedListeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function rememberToken(token) {
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

/** Moves a `token=` parameter of the fragment into sessionStorage and out of the address bar;
 * returns the fragment's other parameters. */
export function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("token")) {
    rememberToken(params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
  return params;
}

/** Calls `listener()` whenever the API refuses the token (or its absence). */
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
}

function headersFor(body) {
  const headers = {Accept: "application/json"};
  const token = storedToken();
  if (token) {
    headers.Authorization = "Bearer " + token;
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  return headers;
}

/** `fetch` with the token; a JSON body when `body` is given (state-changing calls send `{}` when
 * they have no options). Resolves to the Response when it is a success, else throws ApiError. */
export async function request(method, path, {body, signal, accept} = {}) {
  const headers = headersFor(body);
  if (accept) {
    headers.Accept = accept;
  }
  let response;
  try {
    response = await fetch(path, {method, headers, signal, credentials: "omit", cache: "no-store",
                                  body: body === undefined ? undefined : JSON.stringify(body)});
  } catch (error) {
    if (error.name === "AbortError") {
      throw error;
    }
    throw new ApiError(0, "network", "The admin API could not be reached: " + error.message);
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  return response;
}

async function errorOf(response) {
  let code = "http_" + response.status;
  let message = response.status + " " + response.statusText;
  try {
    const answer = await response.json();
    code = String(answer.error || code);
    message = String(answer.message || message);
  } catch {
    // not the API's JSON error shape: keep the status line
  }
  if (response.status === 401) {
    unauthorizedListeners.forEach((listener) => listener());
  }
  return new ApiError(response.status, code, message);
}

/** A call answered with JSON (or nothing: 204 gives null). */
export async function json(method, path, options = {}) {
  const response = await request(method, path, options);
  if (response.status === 204) {
    return null;
  }
  return response.json();
}

export const get = (path, options) => json("GET", path, options);
export const post = (path, body = {}, options = {}) => json("POST", path, {...options, body});
export const remove = (path, options) => json("DELETE", path, options);

/** A query string of the parameters that have a value ("" and null are left out). */
export function query(parameters) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== "" && value !== null && value !== undefined && value !== false) {
      search.set(name, String(value));
    }
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

export function recordingPath(id, rest = "") {
  return "/stream-recordings/" + encodeURIComponent(id) + rest;
}

export function replayPath(id, rest = "") {
  return "/replay/" + encodeURIComponent(id) + rest;
}

function attachmentName(response, fallback) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"/\\]+)"/.exec(disposition);
  return match ? match[1] : fallback;
}

/** POSTs `body` to `path` and saves the answer as a file (a Blob behind an <a download>). */
export async function download(path, body, fallbackName) {
  const response = await request("POST", path, {body, accept: "application/json"});
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = attachmentName(response, fallbackName);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return link.download;
}
