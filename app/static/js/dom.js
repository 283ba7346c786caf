// DOM helpers. Every piece of data reaches the page as text (textContent or a
// text node), never as HTML: file names and log messages are user input.

/**
 * Create an element. `props`: `class`, `text`, `dataset`, `on<event>` (functions
 * only), booleans (present or absent), anything else is a plain attribute.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children: nodes as they are, anything else as text. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replace every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled progress bar (0-100) and the function that updates it. */
export function progressBar(label) {
  const fill = h("span", { class: "bar-fill" });
  const bar = h(
    "span",
    {
      class: "bar",
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": 0,
    },
    fill,
  );
  const set = (value) => {
    const percent = Math.max(0, Math.min(100, Math.round(Number(value) || 0)));
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", `${percent}%`);
    fill.style.width = `${percent}%`;
  };
  set(0);
  return { bar, set };
}

/** A status badge. */
export function badge(status) {
  return h("span", { class: `badge status-${status}`, text: status });
}

/** Call `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = null;
  const call = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  call.cancel = () => clearTimeout(timer);
  return call;
}

/** Show a short message in the polite live region. */
export function toast(message, kind = "info") {
  const region = document.getElementById("toast");
  region.className = `toast ${kind} visible`;
  region.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => region.classList.remove("visible"), 5000);
}

/** Ask for confirmation in the modal dialog; resolves true when confirmed. */
export function confirmAction(message, confirmLabel = "Confirm") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-message").textContent = message;
  document.getElementById("confirm-yes").textContent = confirmLabel;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const onClick = (event) => {
      const answer = event.target.closest("[data-answer]")?.dataset.answer;
      if (answer) dialog.close(answer);
    };
    const onClose = () => {
      dialog.removeEventListener("click", onClick);
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(dialog.returnValue === "yes");
    };
    dialog.returnValue = "";
    dialog.addEventListener("click", onClick);
    dialog.addEventListener("close", onClose, { once: true });
    dialog.showModal();
  });
}

/** Call `fn` once, `ms` after the first of a burst of calls (later calls join it). */
export function batched(fn, ms) {
  let timer = null;
  const call = () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
  call.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return call;
}
