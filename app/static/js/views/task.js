// One task: details, live progress, result, key figures of report.json,
// downloads and logs.

import { api, download, fetchJsonFile } from "../api.js";
import { taskActions } from "../actions.js";
import { badge, batched, h, progressBar, replace, toast } from "../dom.js";
import { bytes, dateTime, number, percent } from "../format.js";
import { chapterLengthChart, dialogueChart, presenceHeatmap } from "../charts.js";

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
  const writing = report.writing && typeof report.writing === "object" ? report.writing : {};
  const figures = [
    ["Chapters", counts.chapters ?? chapters.length],
    ["Words", counts.words],
    ["Words (segmented)", typeof counts.segmented_words === "number" ? counts.segmented_words : undefined],
    ["Characters", counts.characters],
    ["Sentences", counts.sentences],
    ["Paragraphs", counts.paragraphs],
    ["Reading time", report.reading_time_minutes === undefined ? undefined : `${number(report.reading_time_minutes)} min`],
    ["Average sentence length", report.average_sentence_length],
    ["Dialogue ratio", report.dialogue_ratio === undefined ? undefined : percent(report.dialogue_ratio, 1)],
    ["Lexical diversity", report.lexical_diversity],
    ["Readability", typeof writing.readability?.score === "number" ? writing.readability.score.toFixed(1) : undefined],
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
  // Drawn only from the keys the report has (schema_version 1 has no dialogue
  // ratio per chapter nor presence lists).
  const charts = [chapterLengthChart(chapters), dialogueChart(chapters, report.dialogue_ratio), presenceHeatmap(chapters, names)].filter(Boolean);
  if (charts.length) parts.push(h("h3", { text: "Chapters at a glance" }), h("div", { class: "charts", id: "report-charts" }, charts));
  parts.push(renderWriting(writing));
  if (chapters.length) {
    const shown = chapters.slice(0, 100);
    const withDialogue = chapters.some((c) => typeof c.dialogue_ratio === "number");
    parts.push(
      h("h3", { text: "Chapters" }),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "chapters" },
          h("thead", {}, h("tr", {}, ["#", "Title", "Words", withDialogue ? "Dialogue" : null].filter(Boolean).map((t) => h("th", { scope: "col", text: t })))),
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
                withDialogue ? h("td", { "data-label": "Dialogue", text: typeof c.dialogue_ratio === "number" ? percent(c.dialogue_ratio, 1) : "—" }) : null,
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
      h("ul", { class: "checks", id: "report-checks" }, checks.map(renderCheck)),
    );
  }
  return parts;
}

/** "✗ truncated (1, −20%)" and where a failing check saw the problem. */
function renderCheck(check) {
  const cost = typeof check.penalty === "number" && check.penalty > 0 ? `, −${percent(check.penalty, check.penalty < 0.01 ? 1 : 0)}` : "";
  const examples = Array.isArray(check.examples) ? check.examples.filter((e) => e && typeof e === "object") : [];
  return h(
    "li",
    { class: check.passed ? "passed" : "not-passed", dataset: { check: String(check.name) } },
    h("span", { text: `${check.passed ? "✓" : "✗"} ${check.name} (${number(check.count)}${cost})` }),
    examples.length
      ? h(
          "ul",
          { class: "check-examples" },
          examples.map((e) => {
            const where = typeof e.chapter === "number" ? `Chapter ${e.chapter}, offset ${number(e.offset)}` : `Offset ${number(e.offset)}`;
            return h("li", { text: `${where}: “${e.sample ?? ""}”` });
          }),
        )
      : null,
  );
}

/** report.writing, briefly: readability, sentence lengths, overused words, repeated phrases. */
function renderWriting(writing) {
  const lines = [];
  const readability = writing.readability;
  if (readability && typeof readability.score === "number") {
    lines.push(
      `Readability: ${readability.score.toFixed(1)} (${readability.formula}; higher is easier), ` +
        `${number(readability.words_per_sentence)} words a sentence, ${number(readability.syllables_per_word)} syllables a word.`,
    );
  }
  const lengths = writing.sentence_lengths;
  if (lengths && typeof lengths.mean === "number") {
    lines.push(
      `Sentence length: mean ${number(lengths.mean)} words, median ${number(lengths.median)}, ` +
        `90% at most ${number(lengths.p90)}, longest ${number(lengths.max)}.`,
    );
  }
  const overused = Array.isArray(writing.overused_words) ? writing.overused_words : [];
  const phrases = Array.isArray(writing.repeated_phrases) ? writing.repeated_phrases : [];
  if (!lines.length && !overused.length && !phrases.length) return null;
  // the (up to 3) chapters where it is used most
  const where = (item) => (Array.isArray(item.chapters) && item.chapters.length ? `; ch. ${item.chapters.join(", ")}` : "");
  return h(
    "div",
    { id: "report-writing" },
    h("h3", { text: "Writing" }),
    lines.map((text) => h("p", { class: "writing-line", text })),
    h(
      "div",
      { class: "writing" },
      overused.length
        ? h(
            "div",
            {},
            h("h4", { text: "Overused words" }),
            h("ul", { class: "chips", id: "report-overused" }, overused.map((w) => h("li", { title: `${number(w.per_10k_words)} per 10,000 words`, text: `${w.term} (${number(w.count)}${where(w)})` }))),
          )
        : null,
      phrases.length
        ? h(
            "div",
            {},
            h("h4", { text: "Repeated phrases" }),
            h("ul", { class: "chips", id: "report-phrases" }, phrases.map((p) => h("li", { text: `“${p.phrase}” (${number(p.count)}${where(p)})` }))),
          )
        : null,
    ),
  );
}
