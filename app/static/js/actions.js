// Cancel, retry and delete buttons for one task (the list and the task page).

import { api } from "./api.js";
import { confirmAction, h, toast } from "./dom.js";
import { ACTIVE, RETRYABLE } from "./format.js";

/**
 * The buttons that fit the task's status. `onChanged(task)` gets the updated
 * task after a cancel or retry, `onDeleted()` runs after a delete.
 */
export function taskActions(task, { onChanged, onDeleted }) {
  const name = task.file_name;
  const run = async (button, work, done) => {
    button.disabled = true;
    try {
      await done(await work());
    } catch (error) {
      toast(error.message, "error");
    } finally {
      button.disabled = false;
    }
  };
  const buttons = [];
  if (ACTIVE.has(task.status)) {
    const cancel = h("button", {
      type: "button",
      class: "button small secondary",
      "aria-label": `Cancel ${name}`,
      text: "Cancel",
      onclick: async () => {
        if (!(await confirmAction(`Cancel the processing of “${name}”?`, "Cancel task"))) return;
        await run(cancel, () => api(`/tasks/${task.id}`, { method: "PATCH", json: { status: "cancelled" } }), (updated) => {
          toast(`Cancelled ${name}`);
          onChanged(updated);
        });
      },
    });
    buttons.push(cancel);
  }
  if (RETRYABLE.has(task.status)) {
    const retry = h("button", {
      type: "button",
      class: "button small secondary",
      "aria-label": `Retry ${name}`,
      text: "Retry",
      onclick: () =>
        run(retry, () => api(`/tasks/${task.id}`, { method: "PATCH", json: { status: "pending" } }), (updated) => {
          toast(`Queued ${name} again`);
          onChanged(updated);
        }),
    });
    buttons.push(retry);
  }
  const remove = h("button", {
    type: "button",
    class: "button small danger",
    "aria-label": `Delete ${name}`,
    text: "Delete",
    onclick: async () => {
      const question = `Delete “${name}” with its logs and files? This cannot be undone.`;
      if (!(await confirmAction(question, "Delete task"))) return;
      await run(remove, () => api(`/tasks/${task.id}`, { method: "DELETE" }), () => {
        toast(`Deleted ${name}`);
        onDeleted();
      });
    },
  });
  buttons.push(remove);
  return h("div", { class: "actions" }, buttons);
}
