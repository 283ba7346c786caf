// Sign in: email and password (a JWT from /auth/login) or a pasted API key.

import { login, useApiKey } from "../api.js";
import { h } from "../dom.js";

export function mountSignIn(container, { onSignedIn }) {
  const passwordError = h("p", { class: "error", role: "alert", id: "password-error" });
  const keyError = h("p", { class: "error", role: "alert", id: "key-error" });

  async function submit(event, form, error, action) {
    event.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await action(new FormData(form));
      onSignedIn();
    } catch (exc) {
      error.textContent = exc.status === 401 ? "Those credentials were not accepted." : exc.message;
    } finally {
      button.disabled = false;
    }
  }

  const passwordForm = h(
    "form",
    { class: "card stack", "aria-labelledby": "password-heading", novalidate: true },
    h("h2", { id: "password-heading", text: "With email and password" }),
    h("label", { for: "email", text: "Email" }),
    h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true }),
    h("label", { for: "password", text: "Password" }),
    h("input", {
      id: "password",
      name: "password",
      type: "password",
      autocomplete: "current-password",
      required: true,
    }),
    passwordError,
    h("button", { type: "submit", class: "button", text: "Sign in" }),
  );
  passwordForm.addEventListener("submit", (event) =>
    submit(event, passwordForm, passwordError, (data) => login(String(data.get("email")), String(data.get("password")))),
  );

  const keyForm = h(
    "form",
    { class: "card stack", "aria-labelledby": "key-heading", novalidate: true },
    h("h2", { id: "key-heading", text: "With an API key" }),
    h("label", { for: "api-key", text: "API key" }),
    h("input", { id: "api-key", name: "key", type: "password", autocomplete: "off", spellcheck: "false", required: true }),
    keyError,
    h("button", { type: "submit", class: "button secondary", text: "Use API key" }),
  );
  keyForm.addEventListener("submit", (event) =>
    submit(event, keyForm, keyError, (data) => useApiKey(String(data.get("key")))),
  );

  container.append(
    h(
      "section",
      { class: "signin", "aria-labelledby": "signin-heading" },
      h("h1", { id: "signin-heading", text: "Sign in" }),
      h("p", {
        class: "muted",
        text: "Upload manuscripts, follow their analysis live and download the reports. Your credential stays in this browser tab only.",
      }),
      h("div", { class: "signin-forms" }, passwordForm, keyForm),
    ),
  );
  return {};
}
