// Keyplane's REST API with the signed-in user's credentials. The Authorization header is set here, from
// sessionStorage (gone when the tab closes); no cookie is ever used, so no other site can make the
// browser send these credentials (no CSRF by construction).

const STORE_KEY = "keyplane.console.authorization";

export class ApiError extends Error {
  constructor(status, body) {
    super(describe(status, body));
    this.status = status;
    this.body = body;
  }
}

function describe(status, body) {
  const error = body && body.error;
  if (error && typeof error === "object") {
    let text = error.type ? `${error.type}: ${error.reason ?? ""}` : String(error.reason ?? "");
    const cause = error.caused_by;
    if (cause && cause.reason && cause.reason !== error.reason) text += ` (caused by ${cause.type}: ${cause.reason})`;
    return text;
  }
  if (typeof error === "string") return error;
  return `HTTP ${status}`;
}

export function authorization() {
  return sessionStorage.getItem(STORE_KEY);
}

export function basic(username, password) {
  const bytes = new TextEncoder().encode(`${username}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return "Basic " + btoa(binary);
}

export function apiKey(encoded) {
  return "ApiKey " + encoded.trim();
}

export function remember(header) {
  sessionStorage.setItem(STORE_KEY, header);
}

export function forget() {
  sessionStorage.removeItem(STORE_KEY);
}

// One call. ``body`` may be an object (sent as JSON) or a string (sent as it is, so that the server
// parses a JSON editor's text itself and its own error says what is wrong).
export async function call(method, path, body, header = authorization()) {
  const init = { method, headers: { Accept: "application/json" }, cache: "no-store", credentials: "omit" };
  if (header) init.headers.Authorization = header;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { error: text };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

// A JSON body with some members given as raw editor text: the server reports their syntax errors.
export function rawBody(members) {
  const parts = [];
  for (const [key, value] of Object.entries(members)) {
    if (value === undefined) continue;
    const text = value && typeof value === "object" && "raw" in value ? value.raw.trim() : JSON.stringify(value);
    if (text === "") continue;
    parts.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${parts.join(",")}}`;
}

export const enc = encodeURIComponent;
