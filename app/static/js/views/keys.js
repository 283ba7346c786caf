// API keys: the caller's keys, a new key (its secret shown once, with a copy
// button) and revocation (asked first; the key stops working at once).

import { api, credential } from "../api.js";
import { confirmAction, h, replace, toast } from "../dom.js";
import { dateTime } from "../format.js";

async function copyText(text, field) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard permission (an insecure origin, a headless browser): leave the
    // secret selected, so Ctrl+C copies it.
    field.focus();
    field.select();
    return false;
  }
}

export function mountKeys(container) {
  let destroyed = false;
  const name = h("input", { id: "key-name", name: "name", required: true, maxlength: 100, autocomplete: "off", placeholder: "e.g. nightly import script" });
  const create = h("button", { type: "submit", class: "button", text: "Create key" });
  const formError = h("p", { class: "error", role: "alert" });
  const secretBox = h("div", { id: "new-key", class: "new-key", hidden: true });
  const form = h(
    "form",
    { class: "fields", id: "key-form" },
    h("div", { class: "field" }, h("label", { for: "key-name", text: "Name" }), name),
    h("div", { class: "field narrow align-end" }, create),
  );
  const tbody = h("tbody");
  const listError = h("p", { class: "error", role: "alert" });

  container.append(
    h("h1", { text: "API keys" }),
    h("p", { class: "muted", text: "A key signs scripts and tools in as you: send it as Authorization: Bearer <key>. Revoking a key refuses its next request." }),
    h("section", { class: "card", "aria-labelledby": "key-create-heading" }, h("h2", { id: "key-create-heading", text: "New key" }), form, formError, secretBox),
    h(
      "section",
      { class: "card", "aria-labelledby": "key-list-heading" },
      h("h2", { id: "key-list-heading", text: "Your keys" }),
      listError,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "stacked", id: "key-table" },
          h("caption", { class: "visually-hidden", text: "Your API keys" }),
          h("thead", {}, h("tr", {}, ["Name", "Prefix", "Created", "Last used", "Actions"].map((t) => h("th", { scope: "col", text: t })))),
          tbody,
        ),
      ),
    ),
  );

  function showSecret(created) {
    const field = h("input", { id: "new-key-secret", readonly: true, value: created.key, spellcheck: "false", autocomplete: "off", class: "secret" });
    const copy = h("button", { type: "button", class: "button secondary", id: "copy-key", text: "Copy" });
    const copied = h("span", { class: "muted small", role: "status", id: "copy-status" });
    copy.addEventListener("click", async () => {
      copied.textContent = (await copyText(created.key, field)) ? "Copied to the clipboard." : "Selected: press Ctrl+C (⌘C) to copy.";
    });
    replace(
      secretBox,
      h("p", { class: "notice", id: "new-key-notice" }, h("strong", { text: `Key “${created.name}” created. ` }), "Copy it now: it is shown this once, and only its hash is kept."),
      h("div", { class: "secret-row" }, h("label", { for: "new-key-secret", class: "visually-hidden", text: "The new key" }), field, copy),
      copied,
    );
    secretBox.hidden = false;
    field.focus();
    field.select();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    create.disabled = true;
    try {
      const created = await api("/auth/api-keys", { method: "POST", json: { name: name.value.trim() } });
      name.value = "";
      showSecret(created);
      load();
    } catch (error) {
      formError.textContent = `The key was not created: ${error.message}`;
    } finally {
      create.disabled = false;
    }
  });

  function row(key) {
    const revoke = h("button", { type: "button", class: "button small danger", "aria-label": `Revoke ${key.name}`, text: "Revoke" });
    revoke.addEventListener("click", async () => {
      const own = credential.get()?.kind === "api_key" && credential.token()?.startsWith(`ntm_${key.prefix}_`);
      const warning = own ? " This is the key this page is signed in with: you will be signed out." : "";
      if (!(await confirmAction(`Revoke “${key.name}”? Anything using it is refused from its next request.${warning}`, "Revoke key"))) return;
      revoke.disabled = true;
      try {
        await api(`/auth/api-keys/${encodeURIComponent(key.id)}`, { method: "DELETE" });
        toast(`Revoked ${key.name}`);
        if (own) api("/users/me").catch(() => {}); // refused: the page signs out
        else load();
      } catch (error) {
        toast(error.message, "error");
        revoke.disabled = false;
      }
    });
    return h(
      "tr",
      { "data-key-id": key.id },
      h("td", { "data-label": "Name", class: "wrap", text: key.name }),
      h("td", { "data-label": "Prefix" }, h("code", { text: `ntm_${key.prefix}_…` })),
      h("td", { "data-label": "Created", text: dateTime(key.created_at) }),
      h("td", { "data-label": "Last used", text: key.last_used_at ? dateTime(key.last_used_at) : "never" }),
      h("td", { "data-label": "Actions" }, h("div", { class: "actions" }, revoke)),
    );
  }

  async function load() {
    try {
      const keys = await api("/auth/api-keys");
      if (destroyed) return;
      listError.textContent = "";
      replace(tbody, keys.length ? keys.map(row) : h("tr", {}, h("td", { colspan: 5, class: "empty", text: "No keys yet." })));
    } catch (error) {
      if (!destroyed) listError.textContent = `The keys could not be loaded: ${error.message}`;
    }
  }

  load();
  return {
    destroy() {
      destroyed = true;
    },
  };
}
