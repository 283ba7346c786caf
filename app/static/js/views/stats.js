// Statistics: counts by status, success rate, processing times, queue depth,
// active workers. Refreshed every few seconds and after task changes.

import { api } from "../api.js";
import { batched, h, replace } from "../dom.js";
import { number, percent, seconds, STATUSES } from "../format.js";

const REFRESH_MS = 5000;

export function mountStatistics(container) {
  let destroyed = false;
  const body = h("div", { id: "statistics" }, h("p", { class: "muted", text: "Loading…" }));
  const updated = h("p", { class: "muted small", role: "status" });
  container.append(h("h1", { text: "Statistics" }), body, updated);

  function tile(label, value, id) {
    return h("div", { class: "figure", id }, h("dt", { text: label }), h("dd", { text: value }));
  }

  async function load() {
    let stats;
    try {
      stats = await api("/tasks/statistics");
    } catch (exc) {
      if (!destroyed) replace(body, h("p", { class: "error", role: "alert", text: `The statistics could not be loaded: ${exc.message}` }));
      return;
    }
    if (destroyed) return;
    const total = stats.total || 0;
    const byStatus = stats.by_status ?? {};
    replace(
      body,
      h(
        "section",
        { class: "card", "aria-labelledby": "stats-overview" },
        h("h2", { id: "stats-overview", text: "Overview" }),
        h(
          "dl",
          { class: "figures" },
          tile("Tasks", number(total), "stat-total"),
          tile("Success rate", percent(stats.success_rate, 1), "stat-success-rate"),
          tile("Average processing", seconds(stats.avg_processing_seconds), "stat-avg"),
          tile("95th percentile", seconds(stats.p95_processing_seconds), "stat-p95"),
          tile("Queue depth", number(stats.queue_depth), "stat-queue-depth"),
          tile("Active workers", number(stats.active_workers), "stat-workers"),
          tile("Live connections", number(stats.websocket_connections), "stat-websockets"),
          tile("Completed in the last hour", number(stats.completed_last_hour), "stat-last-hour"),
        ),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "stats-status" },
        h("h2", { id: "stats-status", text: "By status" }),
        h(
          "table",
          { class: "by-status", id: "stats-by-status" },
          h("caption", { class: "visually-hidden", text: "Tasks by status" }),
          h("thead", {}, h("tr", {}, ["Status", "Tasks", "Share"].map((t) => h("th", { scope: "col", text: t })))),
          h(
            "tbody",
            {},
            STATUSES.map((status) => {
              const count = byStatus[status] ?? 0;
              const share = total ? count / total : 0;
              const fill = h("span", { class: `bar-fill status-${status}` });
              fill.style.width = `${Math.round(share * 100)}%`;
              return h(
                "tr",
                { "data-status": status },
                h("th", { scope: "row", text: status }),
                h("td", { class: "count", text: number(count) }),
                h("td", {}, h("span", { class: "bar", "aria-hidden": "true" }, fill), ` ${percent(share)}`),
              );
            }),
          ),
        ),
      ),
    );
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  const soon = batched(load, 1000);
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
