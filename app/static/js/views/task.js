// One task: details, live progress, result, key figures of report.json,
// downloads and logs.

import { api, download, fetchJsonFile } from "../api.js";
import { taskActions } from "../actions.js";
import { badge, batched, h, progressBar, replace, toast } from "../dom.js";
import { bytes, dateTime, number, percent } from "../format.js";

const LOG_PAGE_SIZE = 100;

function definitions(pairs) {
  return h(
    "dl",
    { class: "details" },
    pairs
      .filter(([, value]) => value !== undefined)
      .map(([term, value]) => [h("dt", { text: term }), h("dd", {}, value ?? "—")]),
  );
}

function section(id, title, ...children) {
  return h("section", { class: "card", id, "aria-labelledby": `${id}-heading` }, h("h2", { id: `${id}-heading`, text: title }), children);
}

function scalar(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return number(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** "average_sentence_length" -> "Average sentence length". */
function metricLabel(key) {
  const words = String(key).replaceAll("_", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function mountTask(container, taskId) {
  let task = null;
  let destroyed = false;
  let logsLoaded = 0;

  const heading = h("h1", { text: "Task" });
  const statusSlot = h("span");
  const { bar, set } = progressBar("Task progress");
  const percentText = h("span", { class: "percent", id: "task-percent" });
  const stage = h("span", { class: "stage muted", id: "task-stage" });
  const failure = h("p", { class: "error", role: "alert", id: "task-error" });
  const actionsSlot = h("div");
  const detailsSlot = h("div");
  const resultSlot = h("div", {}, h("p", { class: "muted", text: "The result appears here once the task completes." }));
  const reportSlot = h("div", {}, h("p", { class: "muted", text: "No report yet." }));
  const filesSlot = h("div");
  const logsBody = h("tbody");
  const logsInfo = h("p", { class: "muted" });
  const moreLogs = h("button", { type: "button", class: "button small secondary", text: "Load more logs", hidden: true });
  const problem = h("p", { class: "error", role: "alert" });
  const statusCard = h(
    "section",
    { class: "card", "aria-label": "Status", id: "task-status" },
    h("div", { class: "status-line" }, statusSlot, h("div", { class: "progress-cell wide" }, bar, percentText), stage),
    failure,
    actionsSlot,
  );

  container.append(
    h("p", {}, h("a", { href: "#/", text: "← All tasks" })),
    heading,
    problem,
    statusCard,
    section("task-result", "Result", resultSlot),
    section("task-report", "Key figures (report.json)", reportSlot),
    section("task-files", "Files", filesSlot),
    section(
      "task-logs",
      "Logs",
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "logs" },
          h("caption", { class: "visually-hidden", text: "Log entries, oldest first" }),
          h("thead", {}, h("tr", {}, ["Time", "Level", "Message"].map((t) => h("th", { scope: "col", text: t })))),
          logsBody,
        ),
      ),
      logsInfo,
      moreLogs,
    ),
    section("task-details", "Details", detailsSlot),
  );

  function showProgress() {
    statusCard.dataset.status = task.status;
    replace(statusSlot, badge(task.status));
    set(task.progress);
    percentText.textContent = `${task.progress}%`;
    stage.textContent = task.stage;
    failure.textContent = task.status === "failed" && task.error_message ? task.error_message : "";
  }

  function showTask() {
    heading.textContent = task.file_name;
    document.title = `${task.file_name} · Novel Task Manager`;
    showProgress();
    replace(
      actionsSlot,
      taskActions(task, {
        onChanged: (updated) => {
          task = updated;
          showTask();
        },
        onDeleted: () => {
          location.hash = "#/";
        },
      }),
    );
    replace(
      detailsSlot,
      definitions([
        ["Id", h("code", { text: task.id })],
        ["Size", bytes(task.file_size)],
        ["Type", task.file_type],
        ["Checksum", h("code", { class: "wrap", text: task.checksum })],
        ["Processor", task.processor],
        ["Priority", String(task.priority)],
        ["Project", task.project_id],
        ["Batch", task.batch_id],
        ["Retries", `${task.retry_count} of ${task.max_retries}`],
        ["Uploaded", dateTime(task.uploaded_at)],
        ["Started", dateTime(task.started_at)],
        ["Completed", dateTime(task.completed_at)],
        ["Updated", dateTime(task.updated_at)],
      ]),
    );
  }

  async function loadTask() {
    try {
      task = await api(`/tasks/${encodeURIComponent(taskId)}`);
    } catch (exc) {
      if (destroyed) return;
      problem.textContent = exc.status === 404 ? "This task does not exist, or it was deleted." : exc.message;
      return;
    }
    if (destroyed) return;
    problem.textContent = "";
    showTask();
    await Promise.all([loadFiles(), loadResult(), loadLogs(true)]);
  }

  async function loadResult() {
    if (task.status !== "completed") return;
    try {
      const result = await api(`/tasks/${encodeURIComponent(taskId)}/result`);
      if (destroyed) return;
      const metrics = Object.entries(result.metrics ?? {});
      replace(
        resultSlot,
        result.summary ? h("p", { class: "summary", id: "result-summary", text: result.summary }) : h("p", { class: "muted", text: "No summary." }),
        definitions([
          ["Quality score", percent(result.quality_score)],
          ["Confidence", percent(result.confidence_score)],
          ...metrics.map(([key, value]) => [metricLabel(key), scalar(value)]),
        ]),
      );
    } catch (exc) {
      if (!destroyed && exc.code !== "result_not_ready") replace(resultSlot, h("p", { class: "error", text: exc.message }));
    }
  }

  async function loadFiles() {
    let files;
    try {
      files = await api(`/tasks/${encodeURIComponent(taskId)}/files`);
    } catch (exc) {
      if (!destroyed) replace(filesSlot, h("p", { class: "error", text: exc.message }));
      return;
    }
    if (destroyed) return;
    replace(
      filesSlot,
      files.length === 0
        ? h("p", { class: "muted", text: "No files." })
        : h(
            "ul",
            { class: "files" },
            files.map((file) =>
              h(
                "li",
                {},
                h("span", { class: "file-name", text: file.name }),
                h("span", { class: "muted small", text: ` ${bytes(file.size)} · ${file.content_type}` }),
                h("button", {
                  type: "button",
                  class: "button small secondary",
                  "aria-label": `Download ${file.name}`,
                  text: "Download",
                  onclick: async (event) => {
                    event.currentTarget.disabled = true;
                    const button = event.currentTarget;
                    try {
                      await download(file.url, file.name);
                    } catch (exc) {
                      toast(`The download failed: ${exc.message}`, "error");
                    } finally {
                      button.disabled = false;
                    }
                  },
                }),
              ),
            ),
          ),
    );
    const report = files.find((file) => file.name === "report.json");
    if (report) await loadReport(report);
    else if (task.status === "completed") replace(reportSlot, h("p", { class: "muted", text: "This task has no report.json." }));
  }

  async function loadReport(file) {
    let report;
    try {
      report = await fetchJsonFile(file.url);
    } catch (exc) {
      if (!destroyed) replace(reportSlot, h("p", { class: "error", text: `report.json could not be read: ${exc.message}` }));
      return;
    }
    if (destroyed) return;
    replace(reportSlot, renderReport(report));
  }

  async function loadLogs(reset) {
    const page = reset ? 1 : Math.floor(logsLoaded / LOG_PAGE_SIZE) + 1;
    let logs;
    try {
      logs = await api(`/tasks/${encodeURIComponent(taskId)}/logs`, { query: { page, page_size: LOG_PAGE_SIZE } });
    } catch (exc) {
      if (!destroyed) logsInfo.textContent = `The logs could not be loaded: ${exc.message}`;
      return;
    }
    if (destroyed) return;
    if (reset) {
      logsBody.replaceChildren();
      logsLoaded = 0;
    }
    for (const entry of logs.items) {
      logsBody.append(
        h(
          "tr",
          { class: `log-${String(entry.log_level).toLowerCase()}` },
          h("td", { "data-label": "Time", text: dateTime(entry.created_at) }),
          h("td", { "data-label": "Level", text: entry.log_level }),
          h(
            "td",
            { "data-label": "Message" },
            h(
              "div",
              {},
              entry.message,
              entry.details && Object.keys(entry.details).length ? h("code", { class: "log-details", text: JSON.stringify(entry.details) }) : null,
            ),
          ),
        ),
      );
    }
    logsLoaded += logs.items.length;
    logsInfo.textContent = logs.total === 0 ? "No log entries." : `${logsLoaded} of ${logs.total} entries`;
    moreLogs.hidden = logsLoaded >= logs.total;
  }
  moreLogs.addEventListener("click", () => loadLogs(false));
  const refreshLogs = batched(() => loadLogs(true), 1000);

  function update(message) {
    if (message.task_id !== taskId || !task) return;
    const statusChanged = message.status !== task.status;
    task = { ...task, status: message.status, progress: message.progress, stage: message.stage, error_message: message.error_message, result_url: message.result_url };
    if (statusChanged) {
      loadTask();
    } else {
      showProgress();
      refreshLogs();
    }
  }

  loadTask();
  return {
    update,
    refresh: loadTask,
    destroy() {
      destroyed = true;
      refreshLogs.cancel();
    },
  };
}

function renderReport(report) {
  const counts = report.counts ?? {};
  const chapters = Array.isArray(report.chapters) ? report.chapters : [];
  const keywords = Array.isArray(report.keywords) ? report.keywords : [];
  const names = Array.isArray(report.character_names) ? report.character_names : [];
  const figures = [
    ["Chapters", counts.chapters ?? chapters.length],
    ["Words", counts.words],
    ["Characters", counts.characters],
    ["Sentences", counts.sentences],
    ["Paragraphs", counts.paragraphs],
    ["Reading time", report.reading_time_minutes === undefined ? undefined : `${number(report.reading_time_minutes)} min`],
    ["Average sentence length", report.average_sentence_length],
    ["Dialogue ratio", report.dialogue_ratio === undefined ? undefined : percent(report.dialogue_ratio, 1)],
    ["Lexical diversity", report.lexical_diversity],
    ["Language", report.language],
    ["Encoding", report.encoding ? `${report.encoding.name}${report.encoding.bom ? " (BOM)" : ""}` : undefined],
    ["Decoding confidence", report.encoding?.confidence === undefined ? undefined : percent(report.encoding.confidence)],
    ["Quality score", report.quality?.score === undefined ? undefined : percent(report.quality.score)],
  ].filter(([, value]) => value !== undefined && value !== null);
  const parts = [
    h(
      "dl",
      { class: "figures", id: "report-figures" },
      figures.map(([term, value]) => h("div", { class: "figure" }, h("dt", { text: term }), h("dd", { text: scalar(value) }))),
    ),
  ];
  if (keywords.length) {
    parts.push(
      h("h3", { text: "Keywords" }),
      h("ul", { class: "chips", id: "report-keywords" }, keywords.slice(0, 30).map((k) => h("li", { text: `${k.term} (${number(k.count)})` }))),
    );
  }
  if (names.length) {
    parts.push(
      h("h3", { text: "Main characters" }),
      h("ul", { class: "chips", id: "report-characters" }, names.slice(0, 30).map((c) => h("li", { text: `${c.name} (${number(c.mentions)})` }))),
    );
  }
  if (chapters.length) {
    const shown = chapters.slice(0, 100);
    parts.push(
      h("h3", { text: "Chapters" }),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "chapters" },
          h("thead", {}, h("tr", {}, ["#", "Title", "Words"].map((t) => h("th", { scope: "col", text: t })))),
          h(
            "tbody",
            {},
            shown.map((c) =>
              h(
                "tr",
                {},
                h("td", { "data-label": "#", text: c.index }),
                h("td", { "data-label": "Title", text: c.title }),
                h("td", { "data-label": "Words", text: number(c.words) }),
              ),
            ),
          ),
        ),
      ),
      chapters.length > shown.length ? h("p", { class: "muted", text: `and ${chapters.length - shown.length} more chapters` }) : null,
    );
  }
  const checks = report.quality?.checks;
  if (Array.isArray(checks) && checks.length) {
    parts.push(
      h("h3", { text: "Quality checks" }),
      h("ul", { class: "checks" }, checks.map((c) => h("li", { class: c.passed ? "passed" : "not-passed", text: `${c.passed ? "✓" : "✗"} ${c.name} (${number(c.count)})` }))),
    );
  }
  return parts;
}
