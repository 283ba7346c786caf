// The upload panel: a drop zone and a file picker, several files at once, with
// the upload's own progress (XMLHttpRequest upload events).

import { uploadFiles } from "./api.js";
import { h, progressBar, replace } from "./dom.js";

export function uploadPanel({ onUploaded }) {
  const processor = h("input", {
    id: "upload-processor",
    name: "processor",
    value: "analyze",
    list: "processor-names",
    autocomplete: "off",
    required: true,
  });
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
    h("span", { class: "muted", text: " or drop them here (.txt, .md)" }),
  );

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
        { processor: processor.value.trim() || "analyze", priority: priority.value, project_id: project.value },
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
      h("div", { class: "field" }, h("label", { for: "upload-processor", text: "Processor" }), processor),
      h("datalist", { id: "processor-names" }, h("option", { value: "analyze" }), h("option", { value: "noop" })),
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
