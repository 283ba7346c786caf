// Users (admins): every user, a new user, and each user's role.

import { api } from "../api.js";
import { h, replace, toast } from "../dom.js";
import { dateTime } from "../format.js";

const PAGE_SIZE = 50;

export function mountUsers(container, { user: me }) {
  let destroyed = false;
  let page = 1;
  if (me?.role !== "admin") {
    container.append(h("h1", { text: "Users" }), h("p", { class: "notice", text: "Only admins manage users." }));
    return { destroy() {} };
  }
  const email = h("input", { id: "user-email", type: "email", required: true, maxlength: 320, autocomplete: "off" });
  const password = h("input", { id: "user-password", type: "password", required: true, maxlength: 1024, autocomplete: "new-password", "aria-describedby": "user-password-hint" });
  const role = h("select", { id: "user-role" }, h("option", { value: "user", text: "user" }), h("option", { value: "admin", text: "admin" }));
  const create = h("button", { type: "submit", class: "button", text: "Create user" });
  const formError = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "fields", id: "user-form" },
    h("div", { class: "field" }, h("label", { for: "user-email", text: "Email" }), email),
    h(
      "div",
      { class: "field" },
      h("label", { for: "user-password", text: "Password" }),
      password,
      h("span", { class: "muted small", id: "user-password-hint", text: "At least 10 characters, mixing letters with digits, capitals or symbols." }),
    ),
    h("div", { class: "field narrow" }, h("label", { for: "user-role", text: "Role" }), role),
    h("div", { class: "field narrow align-end" }, create),
  );
  const tbody = h("tbody");
  const listError = h("p", { class: "error", role: "alert" });
  const summary = h("p", { class: "muted", id: "user-summary", role: "status" });
  const previous = h("button", { type: "button", class: "button small secondary", "aria-label": "Previous page", text: "Previous" });
  const next = h("button", { type: "button", class: "button small secondary", "aria-label": "Next page", text: "Next" });
  previous.addEventListener("click", () => {
    page = Math.max(1, page - 1);
    load();
  });
  next.addEventListener("click", () => {
    page += 1;
    load();
  });

  container.append(
    h("h1", { text: "Users" }),
    h("section", { class: "card", "aria-labelledby": "user-create-heading" }, h("h2", { id: "user-create-heading", text: "New user" }), form, formError),
    h(
      "section",
      { class: "card", "aria-labelledby": "user-list-heading" },
      h("h2", { id: "user-list-heading", text: "Everyone" }),
      listError,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "stacked", id: "user-table" },
          h("caption", { class: "visually-hidden", text: "Users" }),
          h("thead", {}, h("tr", {}, ["Email", "Role", "Created"].map((t) => h("th", { scope: "col", text: t })))),
          tbody,
        ),
      ),
      summary,
      h("nav", { class: "pager", "aria-label": "Pages" }, previous, next),
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    create.disabled = true;
    try {
      const created = await api("/users", { method: "POST", json: { email: email.value.trim(), password: password.value, role: role.value } });
      email.value = "";
      password.value = "";
      role.value = "user";
      toast(`Created ${created.email}`);
      await load();
    } catch (error) {
      formError.textContent = `The user was not created: ${error.message}`;
    } finally {
      create.disabled = false;
    }
  });

  function row(user) {
    const select = h(
      "select",
      { "aria-label": `Role of ${user.email}`, dataset: { role: user.role } },
      ["user", "admin"].map((r) => h("option", { value: r, text: r, selected: r === user.role })),
    );
    select.addEventListener("change", async () => {
      select.disabled = true;
      try {
        const updated = await api(`/users/${encodeURIComponent(user.id)}`, { method: "PATCH", json: { role: select.value } });
        user.role = updated.role;
        select.dataset.role = updated.role;
        toast(`${updated.email} is now ${updated.role === "admin" ? "an admin" : "a user"}`);
      } catch (error) {
        select.value = user.role;
        toast(error.message, "error");
      } finally {
        select.disabled = false;
      }
    });
    return h(
      "tr",
      { "data-user-id": user.id },
      h("td", { "data-label": "Email", class: "wrap", text: user.email + (user.id === me.id ? " (you)" : "") }),
      h("td", { "data-label": "Role" }, select),
      h("td", { "data-label": "Created", text: dateTime(user.created_at) }),
    );
  }

  async function load() {
    try {
      const result = await api("/users", { query: { page, page_size: PAGE_SIZE } });
      if (destroyed) return;
      const pages = Math.max(1, Math.ceil(result.total / PAGE_SIZE));
      listError.textContent = "";
      replace(tbody, result.items.map(row));
      summary.textContent = `${result.total} user${result.total === 1 ? "" : "s"}${pages > 1 ? `, page ${page} of ${pages}` : ""}`;
      previous.disabled = page <= 1;
      next.disabled = page >= pages;
    } catch (error) {
      if (!destroyed) listError.textContent = `The users could not be loaded: ${error.message}`;
    }
  }

  load();
  return {
    destroy() {
      destroyed = true;
    },
  };
}
