// Projects: the caller's projects with their task counts; create, rename and
// delete (a project with tasks is deleted with them, as the API's ?cascade=true
// does, after saying how many go).

import { api } from "../api.js";
import { confirmAction, h, replace, toast } from "../dom.js";
import { dateTime, number } from "../format.js";
import { showTasksOfProject } from "./tasks.js";

export function mountProjects(container) {
  let destroyed = false;
  const name = h("input", { id: "project-name", required: true, maxlength: 200, autocomplete: "off" });
  const description = h("input", { id: "project-description", maxlength: 10000, autocomplete: "off" });
  const create = h("button", { type: "submit", class: "button", text: "Create project" });
  const formError = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "fields", id: "project-form" },
    h("div", { class: "field" }, h("label", { for: "project-name", text: "Name" }), name),
    h("div", { class: "field" }, h("label", { for: "project-description", text: "Description (optional)" }), description),
    h("div", { class: "field narrow align-end" }, create),
  );
  const tbody = h("tbody");
  const listError = h("p", { class: "error", role: "alert" });
  const summary = h("p", { class: "muted", id: "project-summary", role: "status" });

  container.append(
    h("h1", { text: "Projects" }),
    h("section", { class: "card", "aria-labelledby": "project-create-heading" }, h("h2", { id: "project-create-heading", text: "New project" }), form, formError),
    h(
      "section",
      { class: "card", "aria-labelledby": "project-list-heading" },
      h("h2", { id: "project-list-heading", text: "Your projects" }),
      listError,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "stacked", id: "project-table" },
          h("caption", { class: "visually-hidden", text: "Your projects" }),
          h("thead", {}, h("tr", {}, ["Name", "Description", "Tasks", "Created", "Actions"].map((t) => h("th", { scope: "col", text: t })))),
          tbody,
        ),
      ),
      summary,
    ),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.textContent = "";
    create.disabled = true;
    try {
      const project = await api("/projects", { method: "POST", json: { name: name.value, description: description.value } });
      name.value = "";
      description.value = "";
      toast(`Created ${project.name}`);
      await load();
    } catch (error) {
      formError.textContent = `The project was not created: ${error.message}`;
    } finally {
      create.disabled = false;
    }
  });

  function row(project) {
    const nameCell = h("td", { "data-label": "Name", class: "wrap" });
    const actions = h("div", { class: "actions" });
    const tr = h(
      "tr",
      { "data-project-id": project.id },
      nameCell,
      h("td", { "data-label": "Description", class: "wrap", text: project.description || "—" }),
      h("td", { "data-label": "Tasks", class: "count", text: number(project.task_count) }),
      h("td", { "data-label": "Created", text: dateTime(project.created_at) }),
      h("td", { "data-label": "Actions" }, actions),
    );

    const show = () => {
      const open = h("a", { href: "#/", text: project.name });
      open.addEventListener("click", () => showTasksOfProject(project.id));
      replace(nameCell, open);
      const rename = h("button", { type: "button", class: "button small secondary", "aria-label": `Rename ${project.name}`, text: "Rename" });
      rename.addEventListener("click", edit);
      const remove = h("button", { type: "button", class: "button small danger", "aria-label": `Delete ${project.name}`, text: "Delete" });
      remove.addEventListener("click", () => destroy(remove));
      replace(actions, rename, remove);
    };

    const edit = () => {
      const inputId = `rename-${project.id}`;
      const input = h("input", { id: inputId, value: project.name, maxlength: 200, required: true, autocomplete: "off" });
      const save = h("button", { type: "submit", class: "button small", text: "Save" });
      const cancel = h("button", { type: "button", class: "button small secondary", text: "Cancel" });
      const editor = h("form", { class: "inline-form" }, h("label", { for: inputId, class: "visually-hidden", text: `New name for ${project.name}` }), input, save, cancel);
      cancel.addEventListener("click", show);
      editor.addEventListener("submit", async (event) => {
        event.preventDefault();
        save.disabled = true;
        try {
          const updated = await api(`/projects/${encodeURIComponent(project.id)}`, { method: "PATCH", json: { name: input.value } });
          toast(`Renamed to ${updated.name}`);
          Object.assign(project, updated);
          show();
        } catch (error) {
          toast(error.message, "error");
          save.disabled = false;
          input.focus();
        }
      });
      replace(nameCell, editor);
      replace(actions);
      input.focus();
      input.select();
    };

    const destroy = async (button) => {
      const count = project.task_count;
      const question = count
        ? `Delete “${project.name}” and its ${number(count)} task${count === 1 ? "" : "s"}, with their files? This cannot be undone.`
        : `Delete the empty project “${project.name}”?`;
      const label = count ? `Delete project and ${number(count)} task${count === 1 ? "" : "s"}` : "Delete project";
      if (!(await confirmAction(question, label))) return;
      button.disabled = true;
      try {
        await api(`/projects/${encodeURIComponent(project.id)}`, { method: "DELETE", query: { cascade: count ? "true" : undefined } });
        toast(`Deleted ${project.name}`);
        await load();
      } catch (error) {
        // 409: tasks were added since the list was loaded; the new count asks again.
        toast(error.message, "error");
        button.disabled = false;
        load();
      }
    };

    show();
    return tr;
  }

  async function load() {
    try {
      const page = await api("/projects", { query: { page_size: 100 } });
      if (destroyed) return;
      listError.textContent = "";
      replace(tbody, page.items.length ? page.items.map(row) : h("tr", {}, h("td", { colspan: 5, class: "empty", text: "No projects yet." })));
      summary.textContent = page.total > page.items.length ? `The first ${page.items.length} of ${page.total} projects` : `${page.total} project${page.total === 1 ? "" : "s"}`;
    } catch (error) {
      if (!destroyed) listError.textContent = `The projects could not be loaded: ${error.message}`;
    }
  }

  load();
  return {
    update() {},
    refresh: load,
    destroy() {
      destroyed = true;
    },
  };
}
