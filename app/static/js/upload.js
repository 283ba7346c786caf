// The upload panel: a drop zone and a file picker, several files at once, with
// the upload's own progress (XMLHttpRequest upload events).

import { api, uploadFiles } from "./api.js";
import { h, progressBar, replace } from "./dom.js";

const DEFAULT_PROCESSOR = "analyze";
let chosenProcessor = DEFAULT_PROCESSOR; // kept while the page lives, like the list's filters

export function uploadPanel({ onUploaded }) {
  // The server's processors (GET /processors); until they arrive, the default alone.
  const processor = h(
    "select",
    { id: "upload-processor", name: "processor", required: true, "aria-describedby": "upload-processor-about" },
    h("option", { value: chosenProcessor, text: chosenProcessor }),
  );
  const about = h("span", { class: "muted small", id: "upload-processor-about" });
  const hint = h("span", { class: "muted", id: "dropzone-hint", text: " or drop them here (.txt, .md)" });
  let described = new Map(); // name -> {description, accepted_extensions}
  const priority = h("input", { id: "upload-priority", name: "priority", type: "number", min: 0, max: 10, value: 5 });
  const project = h("select", { id: "upload-project", name: "project_id" }, h("option", { value: "", text: "No project" }));
  const input = h("input", { id: "file-input", type: "file", multiple: true, class: "visually-hidden" });
  const { bar, set } = progressBar("Upload progress");
  const progressText = h("span", { class: "muted", id: "upload-progress-text" });
  const progressRow = h("div", { class: "upload-progress", hidden: true }, bar, progressText);
  const message = h("p", { class: "upload-message", role: "status", id: "upload-message" });
  const error = h("p", { class: "error", role: "alert", id: "upload-error" });
  const zone = h(
    "div",
    { class: "dropzone", id: "dropzone" },
    input,
    h("label", { for: "file-input", class: "button", text: "Choose files" }),
    hint,
  );

  function describeChoice() {
    const chosen = described.get(processor.value);
    chosenProcessor = processor.value;
    about.textContent = chosen?.description ?? "";
    const types = chosen?.accepted_extensions ?? [];
    if (types.length) {
      input.setAttribute("accept", types.join(","));
      hint.textContent = ` or drop them here (${types.join(", ")})`;
    } else {
      input.removeAttribute("accept");
    }
  }
  processor.addEventListener("change", describeChoice);

  async function loadProcessors() {
    try {
      const processors = await api("/processors");
      described = new Map(processors.map((p) => [p.name, p]));
      const current = described.has(chosenProcessor) ? chosenProcessor : described.has(DEFAULT_PROCESSOR) ? DEFAULT_PROCESSOR : processors[0]?.name;
      replace(
        processor,
        processors.map((p) => h("option", { value: p.name, text: p.name, selected: p.name === current })),
      );
      describeChoice();
    } catch (exc) {
      about.textContent = `The processors could not be listed (${exc.message}): uploads use ${processor.value}.`;
    }
  }
  loadProcessors();

  let busy = false;

  async function send(files) {
    if (busy || files.length === 0) return;
    busy = true;
    input.disabled = true;
    zone.classList.add("busy");
    message.textContent = "";
    error.textContent = "";
    set(0);
    progressRow.hidden = false;
    const label = files.length === 1 ? files[0].name : `${files.length} files`;
    progressText.textContent = `Uploading ${label}…`;
    try {
      const tasks = await uploadFiles(
        files,
        { processor: processor.value || DEFAULT_PROCESSOR, priority: priority.value, project_id: project.value },
        (fraction) => {
          set(fraction * 100);
          progressText.textContent = `Uploading ${label}… ${Math.round(fraction * 100)}%`;
        },
      );
      progressText.textContent = `Uploaded ${label}`;
      message.textContent = tasks.length === 1 ? `Queued ${tasks[0].file_name}.` : `Queued ${tasks.length} files.`;
      onUploaded(tasks);
    } catch (exc) {
      progressRow.hidden = true;
      const prefix = files.length > 1 ? "Nothing was uploaded: " : "Not uploaded: ";
      error.textContent = prefix + exc.message;
    } finally {
      busy = false;
      input.disabled = false;
      input.value = "";
      zone.classList.remove("busy");
    }
  }

  input.addEventListener("change", () => send([...input.files]));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    send([...(event.dataTransfer?.files ?? [])]);
  });

  const element = h(
    "section",
    { class: "card", "aria-labelledby": "upload-heading" },
    h("h2", { id: "upload-heading", text: "Upload manuscripts" }),
    h(
      "div",
      { class: "fields" },
      h("div", { class: "field wide" }, h("label", { for: "upload-processor", text: "Processor" }), processor, about),
      h("div", { class: "field narrow" }, h("label", { for: "upload-priority", text: "Priority (0–10)" }), priority),
      h("div", { class: "field" }, h("label", { for: "upload-project", text: "Project" }), project),
    ),
    zone,
    progressRow,
    message,
    error,
  );

  function setProjects(projects) {
    replace(
      project,
      h("option", { value: "", text: "No project" }),
      projects.map((p) => h("option", { value: p.id, text: p.name })),
    );
  }

  return { element, setProjects };
}
