// The dashboard shell: the session, the hash router and the live connection.
// Routes: #/ (upload and tasks), #/tasks/{id} (one task), #/statistics,
// #/operations, #/projects, #/keys, #/users (admins).

import { api, credential, setUnauthorizedHandler } from "./api.js";
import { toast } from "./dom.js";
import { LiveUpdates } from "./live.js";
import { mountKeys } from "./views/keys.js";
import { mountOperations } from "./views/operations.js";
import { mountProjects } from "./views/projects.js";
import { mountSignIn } from "./views/signin.js";
import { mountStatistics } from "./views/stats.js";
import { mountTask } from "./views/task.js";
import { mountTasks, resetTaskQuery } from "./views/tasks.js";
import { mountUsers } from "./views/users.js";

const VIEWS = {
  statistics: mountStatistics,
  operations: mountOperations,
  projects: mountProjects,
  keys: mountKeys,
  users: mountUsers,
};

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const session = document.getElementById("session");
const liveStatus = document.getElementById("live-status");
const who = document.getElementById("who");

let view = null;
let user = null;
let signedIn = false;

const live = new LiveUpdates({
  onUpdate: (message) => view?.update?.(message),
  onState: showLiveState,
  onReconnected: () => view?.refresh?.(),
  onRejected: () => {
    // The socket closed with 1008: ask the API whether the credential still holds
    // (a 401 signs out through the unauthorized handler).
    api("/users/me").catch(() => {});
  },
});

function showLiveState(state, delay) {
  const labels = {
    connecting: "Connecting…",
    live: "Live",
    offline: "Offline",
    reconnecting: `Reconnecting in ${Math.ceil((delay ?? 0) / 1000)} s`,
  };
  liveStatus.textContent = labels[state] ?? state;
  liveStatus.dataset.state = state;
  if (state === "reconnecting") liveStatus.dataset.retryMs = String(delay);
  else delete liveStatus.dataset.retryMs;
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const task = hash.match(/^\/tasks\/([^/?]+)$/);
  if (task) return { name: "task", id: decodeURIComponent(task[1]) };
  const page = hash.match(/^\/(\w+)$/);
  if (page && Object.hasOwn(VIEWS, page[1])) return { name: page[1] };
  return { name: "tasks" };
}

function render() {
  view?.destroy?.();
  view = null;
  main.replaceChildren();
  if (!credential.get()) {
    nav.hidden = true;
    session.hidden = true;
    view = mountSignIn(main, { onSignedIn: start });
    return;
  }
  const current = route();
  for (const link of nav.querySelectorAll("a")) {
    const active = link.dataset.route === current.name || (current.name === "task" && link.dataset.route === "tasks");
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const context = { user };
  if (current.name === "task") view = mountTask(main, current.id, context);
  else if (VIEWS[current.name]) view = VIEWS[current.name](main, context);
  else view = mountTasks(main, context);
  const heading = main.querySelector("h1");
  document.title = heading ? `${heading.textContent} · Novel Task Manager` : "Novel Task Manager";
}

function focusMain() {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

async function start() {
  try {
    user = await api("/users/me");
  } catch (error) {
    if (error.status === 401) {
      signOut("Your session has ended: please sign in again.");
      return;
    }
    // Anything else (the server restarting…): show the app, the views report errors.
  }
  signedIn = true;
  who.textContent = user ? `${user.email}${user.role === "admin" ? " (admin)" : ""}` : "";
  document.getElementById("nav-users").hidden = user?.role !== "admin";
  nav.hidden = false;
  session.hidden = false;
  live.start();
  render();
  focusMain();
}

function signOut(message) {
  signedIn = false;
  credential.clear();
  resetTaskQuery();
  user = null;
  live.stop();
  who.textContent = "";
  if (location.hash && location.hash !== "#/") history.replaceState(null, "", "#/");
  render();
  if (message) toast(message, "error");
}

setUnauthorizedHandler(() => {
  if (signedIn) signOut("Your session has ended: please sign in again.");
});
document.getElementById("sign-out").addEventListener("click", () => signOut());
// A file dropped next to the drop zone must not replace the page.
for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
window.addEventListener("hashchange", () => {
  render();
  focusMain();
});

if (credential.get()) start();
else render();
