// Operations: the last hour minute by minute (queue depth, tasks completed and
// failed, upload → completion p50/p95) as live charts, the worker processes
// (admins), retry every failed task, cancel a selection of active tasks.
// Ordinary users see their own tasks' figures; admins see everyone's.

import { api } from "../api.js";
import { timeSeriesChart } from "../charts.js";
import { batched, confirmAction, h, replace, toast } from "../dom.js";
import { dateTime, number, seconds } from "../format.js";

const REFRESH_MS = 5000;

function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  return s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

function figure(label, value, id) {
  return h("div", { class: "figure", id }, h("dt", { text: label }), h("dd", { text: value }));
}

export function mountOperations(container, { user }) {
  const admin = user?.role === "admin";
  let destroyed = false;
  const scope = h("p", {
    class: "muted",
    id: "ops-scope",
    text: admin ? "Every user's tasks, over the last hour, minute by minute." : "Your tasks, over the last hour, minute by minute.",
  });
  const figures = h("dl", { class: "figures", id: "ops-figures" });
  const charts = h("div", { class: "charts ops-charts", id: "ops-charts" }, h("p", { class: "muted", text: "Loading…" }));
  const chartsError = h("p", { class: "error", role: "alert" });
  const updated = h("p", { class: "muted small", id: "ops-updated" });

  // Retry every failed task.
  const failedCount = h("span", { id: "ops-failed-count", text: "—" });
  const retryAll = h("button", { type: "button", class: "button secondary", id: "ops-retry-failed", text: "Retry every failed task", disabled: true });
  let failed = 0;
  retryAll.addEventListener("click", async () => {
    const whose = admin ? "every user's" : "your";
    if (!(await confirmAction(`Retry ${whose} ${number(failed)} failed task${failed === 1 ? "" : "s"}?`, `Retry ${number(failed)}`))) return;
    retryAll.disabled = true;
    let done = 0;
    try {
      // The API takes at most 500 a call and says how many are left.
      for (let remaining = 1; remaining > 0 && !destroyed; ) {
        const result = await api("/tasks/bulk", { method: "POST", json: { action: "retry", status: "failed" } });
        done += result.done.length;
        remaining = result.done.length ? result.remaining : 0;
      }
      toast(`Queued ${number(done)} failed task${done === 1 ? "" : "s"} again`);
    } catch (error) {
      toast(error.message, "error");
    }
    load();
  });

  // Cancel a selection of pending and processing tasks.
  const activeBody = h("tbody");
  const selectAll = h("input", { type: "checkbox", id: "ops-select-all", "aria-label": "Select every active task" });
  const cancelSelected = h("button", { type: "button", class: "button danger", id: "ops-cancel-selected", text: "Cancel selected", disabled: true });
  const selected = new Set();
  const syncSelection = () => {
    cancelSelected.disabled = selected.size === 0;
    cancelSelected.textContent = selected.size ? `Cancel ${selected.size} selected` : "Cancel selected";
    const boxes = activeBody.querySelectorAll("input[type=checkbox]");
    selectAll.checked = boxes.length > 0 && [...boxes].every((b) => b.checked);
  };
  selectAll.addEventListener("change", () => {
    for (const box of activeBody.querySelectorAll("input[type=checkbox]")) {
      box.checked = selectAll.checked;
      if (box.checked) selected.add(box.value);
      else selected.delete(box.value);
    }
    syncSelection();
  });
  cancelSelected.addEventListener("click", async () => {
    const ids = [...selected];
    if (!(await confirmAction(`Cancel ${ids.length} task${ids.length === 1 ? "" : "s"}?`, `Cancel ${ids.length}`))) return;
    cancelSelected.disabled = true;
    try {
      const result = await api("/tasks/bulk", { method: "POST", json: { action: "cancel", task_ids: ids } });
      const skipped = result.skipped.length ? ` (${result.skipped.length} had already finished)` : "";
      toast(`Cancelled ${result.done.length}${skipped}`);
      selected.clear();
    } catch (error) {
      toast(error.message, "error");
    }
    load();
  });

  const workersBody = h("tbody");
  const workersSection = admin
    ? h(
        "section",
        { class: "card", "aria-labelledby": "ops-workers-heading" },
        h("h2", { id: "ops-workers-heading", text: "Workers" }),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "stacked", id: "ops-workers" },
            h("caption", { class: "visually-hidden", text: "Worker processes" }),
            h("thead", {}, h("tr", {}, ["Host", "PID", "Concurrency", "Heartbeat", "State", "Running"].map((t) => h("th", { scope: "col", text: t })))),
            workersBody,
          ),
        ),
      )
    : null;

  container.append(
    h("h1", { text: "Operations" }),
    scope,
    figures,
    h("section", { class: "card", "aria-labelledby": "ops-charts-heading" }, h("h2", { id: "ops-charts-heading", text: "The last hour" }), chartsError, charts, updated),
    workersSection,
    h(
      "section",
      { class: "card", "aria-labelledby": "ops-actions-heading" },
      h("h2", { id: "ops-actions-heading", text: "Actions" }),
      h("p", {}, "Failed tasks: ", failedCount, " "),
      retryAll,
      h("h3", { text: "Active tasks" }),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "stacked", id: "ops-active" },
          h("caption", { class: "visually-hidden", text: "Pending and processing tasks" }),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, selectAll), ["File", "Status", "Progress", "Uploaded"].map((t) => h("th", { scope: "col", text: t })))),
          activeBody,
        ),
      ),
      h("div", { class: "actions bulk-bar" }, cancelSelected),
    ),
  );

  function renderCharts(data) {
    const points = data.points;
    const last = points[points.length - 1] ?? {};
    const completed = points.reduce((sum, p) => sum + p.completed, 0);
    const failures = points.reduce((sum, p) => sum + p.failed, 0);
    replace(
      figures,
      figure("Queue depth now", number(last.queue_depth ?? 0), "ops-queue-depth"),
      figure("Completed, last hour", number(completed), "ops-completed"),
      figure("Failed, last hour", number(failures), "ops-failed"),
      figure("Upload → done, p50", seconds(data.p50_seconds), "ops-p50"),
      figure("Upload → done, p95", seconds(data.p95_seconds), "ops-p95"),
    );
    const count = (v) => number(Math.round(v * 100) / 100);
    replace(
      charts,
      timeSeriesChart({
        id: "chart-queue",
        title: "Queue depth",
        subtitle: "tasks waiting at the end of each minute",
        points,
        kind: "line",
        series: [{ key: "queue_depth", label: "Waiting", className: "series-queue" }],
        format: count,
        unitLabel: "tasks",
      }),
      timeSeriesChart({
        id: "chart-throughput",
        title: "Completed and failed",
        subtitle: "tasks finished in each minute",
        points,
        kind: "bars",
        series: [
          { key: "completed", label: "Completed", className: "series-completed" },
          { key: "failed", label: "Failed", className: "series-failed" },
        ],
        format: count,
        unitLabel: "tasks",
      }),
      timeSeriesChart({
        id: "chart-latency",
        title: "Upload to completion",
        subtitle: "p50 and p95 of the tasks completed in each minute",
        points,
        kind: "line",
        series: [
          { key: "p50_seconds", label: "p50", className: "series-p50" },
          { key: "p95_seconds", label: "p95", className: "series-p95" },
        ],
        format: (v) => seconds(v),
        unitLabel: "seconds",
        floor: 0.001,
      }),
    );
  }

  function renderWorkers(workers) {
    if (!workers.length) {
      replace(workersBody, h("tr", {}, h("td", { colspan: 6, class: "empty", text: "No worker process has registered." })));
      return;
    }
    replace(
      workersBody,
      workers.map((w) =>
        h(
          "tr",
          { "data-worker-id": w.id },
          h("td", { "data-label": "Host", class: "wrap", text: w.hostname }),
          h("td", { "data-label": "PID", text: w.pid }),
          h("td", { "data-label": "Concurrency", text: `${w.running.length} of ${w.concurrency} busy` }),
          h("td", { "data-label": "Heartbeat", title: dateTime(w.heartbeat_at), text: ago(w.heartbeat_at) }),
          h("td", { "data-label": "State" }, h("span", { class: `badge ${w.alive ? "status-completed" : "status-failed"}`, text: w.alive ? "alive" : "silent" })),
          h(
            "td",
            { "data-label": "Running" },
            w.running.length
              ? h(
                  "ul",
                  { class: "plain" },
                  w.running.map((t) =>
                    h("li", {}, h("a", { href: `#/tasks/${encodeURIComponent(t.id)}`, class: "wrap", text: t.file_name }), h("span", { class: "muted small", text: ` ${t.progress}% · ${t.stage} · ${t.owner_email}` })),
                  ),
                )
              : h("span", { class: "muted", text: "idle" }),
          ),
        ),
      ),
    );
  }

  let shownIds = null;
  function renderActive(tasks) {
    const shown = new Set(tasks.map((t) => t.id));
    for (const id of [...selected]) if (!shown.has(id)) selected.delete(id);
    const ids = tasks.map((t) => t.id).join(",");
    if (ids && ids === shownIds) {
      // The same tasks: update them in place, so focus and selection stay where they are.
      for (const t of tasks) {
        const row = activeBody.querySelector(`tr[data-task-id="${CSS.escape(t.id)}"]`);
        if (!row) continue;
        row.dataset.status = t.status;
        replace(row.querySelector("[data-label=Status]"), h("span", { class: `badge status-${t.status}`, text: t.status }));
        row.querySelector("[data-label=Progress]").textContent = `${t.progress}%`;
      }
      syncSelection();
      return;
    }
    shownIds = ids;
    if (!tasks.length) {
      replace(activeBody, h("tr", {}, h("td", { colspan: 5, class: "empty", text: "Nothing is waiting or running." })));
    } else {
      replace(
        activeBody,
        tasks.map((t) => {
          const box = h("input", { type: "checkbox", value: t.id, "aria-label": `Select ${t.file_name}`, checked: selected.has(t.id) });
          box.addEventListener("change", () => {
            if (box.checked) selected.add(t.id);
            else selected.delete(t.id);
            syncSelection();
          });
          return h(
            "tr",
            { "data-task-id": t.id, "data-status": t.status },
            h("td", { "data-label": "Select" }, box),
            h("td", { "data-label": "File", class: "wrap" }, h("a", { href: `#/tasks/${encodeURIComponent(t.id)}`, text: t.file_name })),
            h("td", { "data-label": "Status" }, h("span", { class: `badge status-${t.status}`, text: t.status })),
            h("td", { "data-label": "Progress", text: `${t.progress}%` }),
            h("td", { "data-label": "Uploaded", text: dateTime(t.uploaded_at) }),
          );
        }),
      );
    }
    syncSelection();
  }

  async function load() {
    const requests = [
      api("/tasks/statistics/timeseries"),
      api("/tasks/statistics"),
      api("/tasks/", { query: { status: "processing", page_size: 50, sort: "uploaded_at" } }),
      api("/tasks/", { query: { status: "pending", page_size: 50, sort: "-priority" } }),
      admin ? api("/workers") : Promise.resolve(null),
    ];
    const [series, stats, processing, pending, workers] = await Promise.allSettled(requests);
    if (destroyed) return;
    if (series.status === "fulfilled") {
      chartsError.textContent = "";
      renderCharts(series.value);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } else {
      chartsError.textContent = `The figures could not be loaded: ${series.reason.message}`;
    }
    if (stats.status === "fulfilled") {
      failed = stats.value.by_status?.failed ?? 0;
      failedCount.textContent = number(failed);
      retryAll.disabled = failed === 0;
      retryAll.textContent = failed ? `Retry ${number(failed)} failed task${failed === 1 ? "" : "s"}` : "Retry every failed task";
    }
    if (processing.status === "fulfilled" && pending.status === "fulfilled") {
      renderActive([...processing.value.items, ...pending.value.items]);
    }
    if (workers.status === "fulfilled" && workers.value) renderWorkers(workers.value);
  }

  const soon = batched(load, 2000);
  const timer = setInterval(load, REFRESH_MS);
  load();
  return {
    update: soon,
    refresh: load,
    destroy() {
      destroyed = true;
      clearInterval(timer);
      soon.cancel();
    },
  };
}
