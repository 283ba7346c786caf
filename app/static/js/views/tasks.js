// Upload panel and the task list: filters, search, sorting, pagination, live
// progress from the page's WebSocket, a selection with bulk retry, cancel and
// delete, and the downloads of a finished report.

import { api, download } from "../api.js";
import { taskActions } from "../actions.js";
import { badge, batched, confirmAction, debounce, h, progressBar, replace, toast } from "../dom.js";
import { bytes, dateTime, STATUSES } from "../format.js";
import { uploadPanel } from "../upload.js";

const SORTS = [
  ["-uploaded_at", "Newest first"],
  ["uploaded_at", "Oldest first"],
  ["-priority", "Highest priority"],
  ["priority", "Lowest priority"],
  ["file_name", "File name A–Z"],
  ["-file_name", "File name Z–A"],
];

// Kept across views, so coming back from a task page shows the same list.
const DEFAULT_QUERY = { status: "", project_id: "", q: "", sort: "-uploaded_at", page: 1, page_size: 20 };
const query = { ...DEFAULT_QUERY };

/** Forget the filters (on sign-out: the next user starts from the whole list). */
export function resetTaskQuery() {
  Object.assign(query, DEFAULT_QUERY);
}

/** Open the list on one project's tasks (the projects page links here). */
export function showTasksOfProject(projectId) {
  Object.assign(query, DEFAULT_QUERY, { sort: query.sort, page_size: query.page_size, project_id: projectId });
}

const REPORT_FILES = ["report.json", "summary.md"];

/** Download buttons for a completed task whose primary result is report.json (analyze's files). */
function downloads(task) {
  if (task.status !== "completed" || !task.result_url?.endsWith("/report.json")) return null;
  return REPORT_FILES.map((name) => {
    const button = h("button", { type: "button", class: "button small secondary", "aria-label": `Download ${name} of ${task.file_name}`, text: name });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await download(`/tasks/${encodeURIComponent(task.id)}/files/${name}`, name);
      } catch (error) {
        toast(`${name} could not be downloaded: ${error.message}`, "error");
      } finally {
        button.disabled = false;
      }
    });
    return button;
  });
}

const BULK = {
  retry: { label: "Retry", done: "Queued again", ask: null },
  cancel: { label: "Cancel", done: "Cancelled", ask: (n) => [`Cancel the processing of ${n} task${n === 1 ? "" : "s"}?`, `Cancel ${n}`] },
  delete: {
    label: "Delete",
    done: "Deleted",
    ask: (n) => [`Delete ${n} task${n === 1 ? "" : "s"} with their logs and files? This cannot be undone.`, `Delete ${n}`],
  },
};

function select(id, options, value) {
  return h(
    "select",
    { id },
    options.map(([optionValue, text]) => h("option", { value: optionValue, text, selected: optionValue === value })),
  );
}

export function mountTasks(container) {
  const rows = new Map(); // task id -> {task, apply(message)}
  const selected = new Set(); // task ids ticked on this page
  const projectNames = new Map(); // project id -> name
  // Tasks seen live that the last reload did not place on this page: their
  // progress alone does not reload the list again, a change of status does.
  const elsewhere = new Map(); // task id -> status
  const pending = new Map(); // task id -> {status, seq}: updates waiting for a reload
  let sequence = 0;
  let destroyed = false;

  const upload = uploadPanel({
    onUploaded: () => {
      query.page = 1;
      load();
    },
  });

  const statusFilter = select("filter-status", [["", "All statuses"], ...STATUSES.map((s) => [s, s])], query.status);
  const projectFilter = select("filter-project", [["", "All projects"]], query.project_id);
  const search = h("input", { id: "filter-q", type: "search", value: query.q, placeholder: "Part of a file name", maxlength: 255 });
  const sort = select("filter-sort", SORTS, query.sort);
  const pageSize = select("filter-page-size", [10, 20, 50, 100].map((n) => [String(n), String(n)]), String(query.page_size));

  const onFilter = () => {
    Object.assign(query, {
      status: statusFilter.value,
      project_id: projectFilter.value,
      q: search.value.trim(),
      sort: sort.value,
      page_size: Number(pageSize.value),
      page: 1,
    });
    load();
  };
  for (const control of [statusFilter, projectFilter, sort, pageSize]) control.addEventListener("change", onFilter);
  const onSearch = debounce(onFilter, 300);
  search.addEventListener("input", onSearch);

  const tbody = h("tbody");
  const selectAll = h("input", { type: "checkbox", id: "select-all-tasks", "aria-label": "Select every task on this page" });
  const table = h(
    "table",
    { class: "tasks", id: "task-table" },
    h("caption", { class: "visually-hidden", text: "Your tasks" }),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col", class: "select" }, selectAll),
        ["File", "Project", "Status", "Progress", "Processor", "Uploaded", "Actions"].map((label) =>
          h("th", { scope: "col", text: label }),
        ),
      ),
    ),
    tbody,
  );
  const selectionInfo = h("span", { id: "selection-info", class: "muted", role: "status", text: "None selected" });
  const bulkButtons = Object.entries(BULK).map(([action, spec]) => {
    const button = h("button", {
      type: "button",
      class: `button small ${action === "delete" ? "danger" : "secondary"}`,
      id: `bulk-${action}`,
      text: `${spec.label} selected`,
      disabled: true,
    });
    button.addEventListener("click", () => runBulk(action, button));
    return button;
  });
  const bulkBar = h("div", { class: "bulk-bar", role: "group", "aria-label": "Selected tasks" }, selectionInfo, bulkButtons);

  function syncSelection() {
    const boxes = [...tbody.querySelectorAll("input[data-select]")];
    selectAll.checked = boxes.length > 0 && boxes.every((b) => b.checked);
    selectAll.indeterminate = !selectAll.checked && boxes.some((b) => b.checked);
    selectionInfo.textContent = selected.size ? `${selected.size} selected` : "None selected";
    for (const button of bulkButtons) button.disabled = selected.size === 0;
  }
  selectAll.addEventListener("change", () => {
    for (const box of tbody.querySelectorAll("input[data-select]")) {
      box.checked = selectAll.checked;
      if (box.checked) selected.add(box.value);
      else selected.delete(box.value);
    }
    syncSelection();
  });

  async function runBulk(action, button) {
    const ids = [...selected];
    const spec = BULK[action];
    if (spec.ask && !(await confirmAction(...spec.ask(ids.length)))) return;
    button.disabled = true;
    try {
      const result = await api("/tasks/bulk", { method: "POST", json: { action, task_ids: ids } });
      const skipped = result.skipped.length ? `; ${result.skipped.length} left as they were (${result.skipped[0].detail})` : "";
      toast(`${spec.done}: ${result.done.length}${skipped}`, result.done.length ? "info" : "error");
      selected.clear();
    } catch (error) {
      toast(error.message, "error");
    }
    load();
  }
  const summary = h("p", { class: "muted", id: "list-summary", role: "status" });
  const error = h("p", { class: "error", role: "alert" });
  const previous = h("button", { type: "button", class: "button small secondary", "aria-label": "Previous page", text: "Previous" });
  const next = h("button", { type: "button", class: "button small secondary", "aria-label": "Next page", text: "Next" });
  const pageInfo = h("span", { id: "page-info" });
  previous.addEventListener("click", () => {
    query.page = Math.max(1, query.page - 1);
    load();
  });
  next.addEventListener("click", () => {
    query.page += 1;
    load();
  });

  container.append(
    h("h1", { text: "Tasks" }),
    upload.element,
    h(
      "section",
      { class: "card", "aria-labelledby": "list-heading" },
      h("h2", { id: "list-heading", text: "Your tasks" }),
      h(
        "div",
        { class: "fields filters", role: "search" },
        h("div", { class: "field" }, h("label", { for: "filter-q", text: "Search file names" }), search),
        h("div", { class: "field" }, h("label", { for: "filter-status", text: "Status" }), statusFilter),
        h("div", { class: "field" }, h("label", { for: "filter-project", text: "Project" }), projectFilter),
        h("div", { class: "field" }, h("label", { for: "filter-sort", text: "Sort by" }), sort),
        h("div", { class: "field narrow" }, h("label", { for: "filter-page-size", text: "Per page" }), pageSize),
      ),
      error,
      bulkBar,
      h("div", { class: "table-wrap" }, table),
      summary,
      h("nav", { class: "pager", "aria-label": "Pages" }, previous, pageInfo, next),
    ),
  );

  function renderRow(task) {
    const { bar, set } = progressBar(`Progress of ${task.file_name}`);
    const percent = h("span", { class: "percent" });
    const stage = h("span", { class: "stage muted" });
    const statusCell = h("td", { "data-label": "Status" });
    const actionsCell = h("td", { "data-label": "Actions" });
    const box = h("input", { type: "checkbox", value: task.id, "data-select": "", "aria-label": `Select ${task.file_name}`, checked: selected.has(task.id) });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(task.id);
      else selected.delete(task.id);
      syncSelection();
    });
    const row = h(
      "tr",
      { "data-task-id": task.id },
      h("td", { "data-label": "Select", class: "select" }, box),
      h(
        "td",
        { "data-label": "File", class: "file-name" },
        h(
          "div",
          {},
          h("a", { href: `#/tasks/${encodeURIComponent(task.id)}`, text: task.file_name }),
          h("span", { class: "muted small file-size", text: ` ${bytes(task.file_size)}` }),
        ),
      ),
      h("td", { "data-label": "Project", class: "project wrap", "data-project-id": task.project_id ?? "", text: projectName(task.project_id) }),
      statusCell,
      h("td", { "data-label": "Progress" }, h("div", {}, h("div", { class: "progress-cell" }, bar, percent), stage)),
      h(
        "td",
        { "data-label": "Processor" },
        h("div", {}, h("span", { text: task.processor }), h("span", { class: "muted small priority", text: `priority ${task.priority}` })),
      ),
      h("td", { "data-label": "Uploaded", text: dateTime(task.uploaded_at) }),
      actionsCell,
    );
    const entry = { task: { ...task }, row };
    entry.apply = (change) => {
      const statusChanged = change.status !== undefined && change.status !== entry.task.status;
      Object.assign(entry.task, change);
      const t = entry.task;
      row.dataset.status = t.status;
      replace(statusCell, badge(t.status));
      set(t.progress);
      percent.textContent = `${t.progress}%`;
      stage.textContent = t.status === "failed" && t.error_message ? t.error_message : t.stage;
      if (statusChanged || !actionsCell.firstChild) {
        const buttons = taskActions(t, { onChanged: (updated) => entry.apply(updated), onDeleted: load });
        buttons.prepend(...(downloads(t) ?? []));
        replace(actionsCell, buttons);
      }
      if (statusChanged && query.status && t.status !== query.status) scheduleLoad();
    };
    entry.apply({});
    return entry;
  }

  async function load() {
    const mine = ++sequence;
    try {
      const page = await api("/tasks/", { query });
      if (destroyed || mine !== sequence) return;
      const pages = Math.max(1, Math.ceil(page.total / query.page_size));
      if (query.page > pages) {
        query.page = pages;
        load();
        return;
      }
      error.textContent = "";
      rows.clear();
      const onPage = new Set(page.items.map((t) => t.id));
      for (const id of [...selected]) if (!onPage.has(id)) selected.delete(id);
      for (const [id, seen] of pending) {
        if (seen.seq > mine) continue; // arrived after this request left: the next reload decides
        pending.delete(id);
        if (!page.items.some((t) => t.id === id)) elsewhere.set(id, seen.status);
      }
      replace(
        tbody,
        page.items.map((task) => {
          const entry = renderRow(task);
          rows.set(task.id, entry);
          return entry.row;
        }),
      );
      const filtered = query.status || query.project_id || query.q;
      if (page.total === 0) {
        tbody.append(
          h("tr", {}, h("td", { colspan: 8, class: "empty", text: filtered ? "No tasks match these filters." : "No tasks yet: upload a manuscript above." })),
        );
      }
      summary.textContent = `${page.total} task${page.total === 1 ? "" : "s"}`;
      pageInfo.textContent = `Page ${query.page} of ${pages}`;
      previous.disabled = query.page <= 1;
      next.disabled = query.page >= pages;
      syncSelection();
    } catch (exc) {
      if (!destroyed && mine === sequence) error.textContent = `The tasks could not be loaded: ${exc.message}`;
    }
  }
  const scheduleLoad = batched(load, 300);

  async function loadProjects() {
    try {
      const page = await api("/projects", { query: { page_size: 100 } });
      if (destroyed) return;
      upload.setProjects(page.items);
      projectNames.clear();
      for (const p of page.items) projectNames.set(p.id, p.name);
      for (const cell of tbody.querySelectorAll("td[data-project-id]")) cell.textContent = projectName(cell.dataset.projectId || null);
      replace(
        projectFilter,
        h("option", { value: "", text: "All projects" }),
        page.items.map((p) => h("option", { value: p.id, text: p.name, selected: p.id === query.project_id })),
      );
    } catch {
      // Projects are optional: the filter keeps "All projects".
    }
  }

  function update(message) {
    const entry = rows.get(message.task_id);
    if (!entry) {
      // A task this page does not show (a new upload, another tab, or one that
      // belongs to another page): reload, unless only its progress moved.
      if (elsewhere.get(message.task_id) === message.status) return;
      elsewhere.delete(message.task_id);
      pending.set(message.task_id, { status: message.status, seq: sequence + 1 });
      scheduleLoad();
      return;
    }
    const { status, progress, stage, result_url, error_message } = message;
    entry.apply({ status, progress, stage, result_url, error_message });
  }

  function projectName(id) {
    if (!id) return "—";
    return projectNames.get(id) ?? "…";
  }

  loadProjects();
  load();
  return {
    update,
    refresh: load,
    destroy() {
      destroyed = true;
      onSearch.cancel();
      scheduleLoad.cancel();
    },
  };
}
