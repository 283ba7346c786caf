// The public API (/api/v1), and the credential kept in sessionStorage.
// The credential is sent in the Authorization header; only the WebSocket, which
// cannot send headers, carries it as `?token=` (redacted by the server's logs).

const STORAGE_KEY = "ntm.credential";
const BASE = "/api/v1";

export const credential = {
  /** `{token, kind: "jwt"|"api_key", expiresAt}` or null. */
  get() {
    try {
      const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
      if (!value?.token) return null;
      if (value.expiresAt && Date.now() >= value.expiresAt) {
        sessionStorage.removeItem(STORAGE_KEY);
        return null;
      }
      return value;
    } catch {
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(STORAGE_KEY);
  },
  token() {
    return this.get()?.token ?? null;
  },
};

/** A failed request: `status`, the problem's `code` and its human `detail`. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = describe(problem) ?? `The server answered ${status}`;
    super(detail);
    this.status = status;
    this.code = problem?.code ?? null;
    this.detail = detail;
  }
}

function describe(problem) {
  if (!problem || typeof problem !== "object") return null;
  if (typeof problem.detail === "string" && problem.detail) return problem.detail;
  if (Array.isArray(problem.errors) && problem.errors.length) {
    return problem.errors.map((e) => `${(e.loc ?? []).join(".")}: ${e.msg}`).join("; ");
  }
  return typeof problem.title === "string" ? problem.title : null;
}

let onUnauthorized = () => {};

/** Called whenever the server rejects the credential (401). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** Fetch with the credential; the response, or an ApiError. */
async function send(path, { method = "GET", query, json, body, headers = {}, signal } = {}) {
  const url = new URL(path.startsWith("/") && !path.startsWith(BASE) ? BASE + path : path, location.origin);
  if (url.origin !== location.origin) throw new Error("Refusing to send the credential to another origin");
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, String(value));
  }
  const token = credential.token();
  const allHeaders = { Accept: "application/json", ...headers };
  if (token) allHeaders.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    allHeaders["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(url, { method, headers: allHeaders, body, signal, cache: "no-store" });
  if (!response.ok) {
    const error = new ApiError(response.status, await problemOf(response));
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return response;
}

/** A JSON request; the parsed body (null for 204). */
export async function api(path, options) {
  const response = await send(path, options);
  return response.status === 204 ? null : response.json();
}

/** Sign in with email and password (OAuth2 password form); stores the JWT. */
export async function login(email, password) {
  const form = new URLSearchParams({ username: email, password });
  const response = await fetch(`${BASE}/auth/login`, {
    method: "POST",
    headers: { Accept: "application/json" },
    body: form,
    cache: "no-store",
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  const token = await response.json();
  credential.set({
    token: token.access_token,
    kind: "jwt",
    expiresAt: Date.now() + Number(token.expires_in) * 1000,
  });
}

/** Use a pasted API key: it is kept only if the server accepts it. Resolves with the user. */
export async function useApiKey(key) {
  const token = key.trim();
  const response = await fetch(`${BASE}/users/me`, {
    headers: { Accept: "application/json", Authorization: `Bearer ${token}` },
    cache: "no-store",
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  credential.set({ token, kind: "api_key", expiresAt: null });
  return response.json();
}

/**
 * Upload files with XMLHttpRequest, for its upload progress events.
 * One file goes to /tasks/upload, several to /tasks/batch (all or none).
 * Resolves with the created tasks; rejects with an ApiError.
 */
export function uploadFiles(files, fields, onProgress) {
  return new Promise((resolve, reject) => {
    const many = files.length > 1;
    const form = new FormData();
    for (const [key, value] of Object.entries(fields)) {
      if (value !== null && value !== undefined && value !== "") form.append(key, String(value));
    }
    for (const file of files) form.append(many ? "files" : "file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${BASE}/tasks/${many ? "batch" : "upload"}`);
    xhr.responseType = "json";
    xhr.setRequestHeader("Accept", "application/json");
    const token = credential.token();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(many ? xhr.response.tasks : [xhr.response]);
        return;
      }
      const error = new ApiError(xhr.status, xhr.response);
      if (xhr.status === 401) onUnauthorized(error);
      reject(error);
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { detail: "The upload failed: the server could not be reached" })));
    xhr.addEventListener("abort", () => reject(new ApiError(0, { detail: "The upload was cancelled" })));
    xhr.send(form);
  });
}

/** The file name a Content-Disposition header gives (filename* first), or null. */
export function dispositionName(header) {
  if (!header) return null;
  const extended = /filename\*\s*=\s*utf-8''([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      // fall back to the plain name
    }
  }
  const plain = /filename\s*=\s*"([^"]*)"/i.exec(header);
  return plain ? plain[1] : null;
}

/**
 * Fetch a file with the credential and save it through an object URL, under the
 * name the server gives (the manuscript's: pride_and_prejudice.report.json).
 */
export async function download(url, name) {
  const response = await send(url, { headers: { Accept: "*/*" } });
  const blob = await response.blob();
  const saveAs = dispositionName(response.headers.get("Content-Disposition")) || name;
  const objectUrl = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: objectUrl, download: saveAs });
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
}

/** A file of a task, parsed as JSON (e.g. report.json). */
export async function fetchJsonFile(url) {
  const response = await send(url);
  return response.json();
}
