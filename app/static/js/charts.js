// Small SVG charts of report.json's per-chapter figures: bars (chapter
// lengths, dialogue per chapter) and a heatmap (characters × chapters); and of
// the operations view's last hour (timeSeriesChart: lines or stacked bars).
//
// Built with createElementNS and textContent only (the page enforces Trusted
// Types). Each chart is a <figure> whose <svg role="img"> carries an
// accessible name and description, and a visually hidden table of the same
// numbers for screen readers. Axis labels are HTML beside the SVG, so they
// stay readable at any width while the SVG stretches (preserveAspectRatio
// "none"): one chapter or 150 fit the same box.

import { append, h } from "./dom.js";
import { number, percent } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const BAR_HEIGHT = 100; // viewBox units; the CSS height sets the pixels
const SLOT = 10; // viewBox width of one chapter
const HEATMAP_LEVELS = 4;

let sequence = 0;

/** A fresh id prefix, so that several charts on a page never share ids. */
function uid(prefix) {
  sequence += 1;
  return `${prefix}-${sequence}`;
}

/** Create an SVG element; `text` becomes its textContent, anything else an attribute. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "text") el.textContent = String(value);
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

function isCount(value) {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

/** "3. Down the Rabbit-Hole", or "Chapter 3" without a title. */
function chapterName(chapter, position) {
  const index = chapter.index ?? position + 1;
  const title = typeof chapter.title === "string" ? chapter.title.trim() : "";
  return title ? `${index}. ${title}` : `Chapter ${index}`;
}

/** Labels along the x axis: the first and last chapter (and the middle one from 5 chapters). */
function chapterAxis(chapters) {
  const at = (i) => h("span", { text: `Ch. ${chapters[i].index ?? i + 1}` });
  const n = chapters.length;
  const labels = n === 1 ? [at(0)] : n < 5 ? [at(0), at(n - 1)] : [at(0), at(Math.floor((n - 1) / 2)), at(n - 1)];
  return h("div", { class: "chart-axis-x", "aria-hidden": "true", dataset: { count: String(labels.length) } }, labels);
}

/** The position of the smallest and of the largest value (first one on ties). */
function extremes(values) {
  let low = 0;
  let high = 0;
  values.forEach((v, i) => {
    if (v < values[low]) low = i;
    if (v > values[high]) high = i;
  });
  return { low, high };
}

/** The chart's numbers for screen readers (in a hidden box: a table is never narrower than its content). */
function hiddenTable(caption, head, rows) {
  const body = rows.map(([name, ...cells]) => h("tr", {}, h("th", { scope: "row", text: name }), cells.map((c) => h("td", { text: c }))));
  return h(
    "div",
    { class: "visually-hidden" },
    h(
      "table",
      { class: "chart-data" },
      h("caption", { text: caption }),
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, body),
    ),
  );
}

/**
 * A bar per chapter. `values[i]` belongs to `chapters[i]`; `top` is the value
 * drawn at full height; `reference` (optional) draws a dashed line across.
 */
function barChart({ id, title, subtitle, chapters, values, top, format, unitLabel, reference, note, barClass }) {
  const titleId = uid(`${id}-title`);
  const noteId = uid(`${id}-note`);
  const n = values.length;
  const gap = n <= 60 ? 0.2 : 0.1;
  const plot = svg(
    "svg",
    {
      class: "chart-svg",
      role: "img",
      "aria-labelledby": titleId,
      "aria-describedby": noteId,
      viewBox: `0 0 ${n * SLOT} ${BAR_HEIGHT}`,
      preserveAspectRatio: "none",
    },
    svg("title", { id: titleId, text: `${title}: ${subtitle}` }),
    svg("desc", { text: note }),
  );
  values.forEach((value, i) => {
    const height = top > 0 ? (Math.min(value, top) / top) * BAR_HEIGHT : 0;
    const shown = value > 0 ? Math.max(height, 0.75) : 0; // a tiny value stays visible
    plot.append(
      svg(
        "rect",
        {
          class: `chart-bar ${barClass}`,
          x: i * SLOT + (SLOT * gap) / 2,
          y: BAR_HEIGHT - shown,
          width: SLOT * (1 - gap),
          height: shown,
          "data-chapter": chapters[i].index ?? i + 1,
          "data-value": value,
        },
        svg("title", { text: `${chapterName(chapters[i], i)}: ${format(value)}` }),
      ),
    );
  });
  if (reference !== undefined && top > 0) {
    const y = BAR_HEIGHT - (Math.min(reference, top) / top) * BAR_HEIGHT;
    plot.append(
      svg("line", {
        class: "reference",
        x1: 0,
        x2: n * SLOT,
        y1: y,
        y2: y,
        "vector-effect": "non-scaling-stroke",
        "data-value": reference,
      }),
    );
  }
  return h(
    "figure",
    { class: "chart", id },
    h("figcaption", {}, h("span", { class: "chart-title", text: title }), h("span", { class: "muted small", text: ` ${subtitle}` })),
    h(
      "div",
      { class: "chart-plot" },
      h("div", { class: "chart-axis-y", "aria-hidden": "true" }, h("span", { text: format(top) }), h("span", { text: format(0) })),
      plot,
      h("span"),
      chapterAxis(chapters),
    ),
    h("p", { class: "chart-note muted small", id: noteId, text: note }),
    hiddenTable(
      `${title}: ${subtitle}`,
      ["Chapter", unitLabel],
      values.map((v, i) => [chapterName(chapters[i], i), format(v)]),
    ),
  );
}

/** Chapter lengths (pacing) from chapters[].words; null when a chapter has none. */
export function chapterLengthChart(chapters) {
  if (!chapters.length || !chapters.every((c) => isCount(c?.words))) return null;
  const values = chapters.map((c) => c.words);
  const { low, high } = extremes(values);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const words = (v) => `${number(v)} words`;
  const note =
    values.length === 1
      ? `One chapter of ${words(values[0])}.`
      : values[low] === values[high]
        ? `Every chapter: ${words(values[0])}.`
        : `Shortest: chapter ${chapters[low].index ?? low + 1} (${words(values[low])}); longest: chapter ${chapters[high].index ?? high + 1} (${words(values[high])}); mean ${number(Math.round(mean))} (dashed line).`;
  return barChart({
    id: "chart-chapter-lengths",
    title: "Chapter lengths",
    subtitle: `words in each of the ${number(values.length)} chapters`,
    chapters,
    values,
    top: values[high],
    format: (v) => number(v),
    unitLabel: "Words",
    reference: values.length > 1 ? mean : undefined,
    note,
    barClass: "bar-words",
  });
}

/** Dialogue ratio per chapter from chapters[].dialogue_ratio; null when a chapter has none. */
export function dialogueChart(chapters, overall) {
  if (!chapters.length || !chapters.every((c) => isCount(c?.dialogue_ratio) && c.dialogue_ratio <= 1)) return null;
  const values = chapters.map((c) => c.dialogue_ratio);
  const { low, high } = extremes(values);
  const pct = (v) => percent(v, 1);
  const whole = isCount(overall) && overall <= 1 ? overall : undefined;
  // The scale ends at the next 10 % above the highest chapter or the whole book (at least 10 %).
  const highest = Math.max(values[high], whole ?? 0);
  const top = Math.min(1, Math.max(0.1, Math.ceil(highest * 10 - 1e-9) / 10));
  const parts = [];
  if (whole !== undefined) parts.push(`Whole book: ${pct(whole)} (dashed line)`);
  if (values.length > 1 && values[low] === values[high]) {
    parts.push(`every chapter: ${pct(values[0])}`);
  } else if (values.length > 1) {
    parts.push(`least: chapter ${chapters[low].index ?? low + 1} (${pct(values[low])})`);
    parts.push(`most: chapter ${chapters[high].index ?? high + 1} (${pct(values[high])})`);
  } else {
    parts.push(`the chapter: ${pct(values[0])}`);
  }
  const note = `${parts.join("; ")}.`;
  return barChart({
    id: "chart-dialogue",
    title: "Dialogue by chapter",
    subtitle: "share of each chapter's text inside quotation marks or dialogue dashes",
    chapters,
    values,
    top,
    format: (v) => (v === 0 || v === top ? percent(v) : pct(v)),
    unitLabel: "Dialogue",
    reference: whole,
    note: note.charAt(0).toUpperCase() + note.slice(1),
    barClass: "bar-dialogue",
  });
}

/**
 * Each main character's mentions per chapter (character_names[].chapter_mentions),
 * at most `limit` characters; null when no character has a presence list that
 * matches the chapters. A cell's shade is its share of the character's busiest
 * chapter, in four steps; an empty cell means no mention.
 */
export function presenceHeatmap(chapters, characters, limit = 10) {
  if (!chapters.length) return null;
  const rows = characters
    .filter(
      (c) =>
        c &&
        typeof c.name === "string" &&
        Array.isArray(c.chapter_mentions) &&
        c.chapter_mentions.length === chapters.length &&
        c.chapter_mentions.every(isCount),
    )
    .slice(0, limit);
  if (!rows.length) return null;
  const id = "chart-presence";
  const titleId = uid(`${id}-title`);
  const n = chapters.length;
  const gap = n <= 60 ? 1 : 0;
  const title = "Character presence";
  const subtitle = `mentions of the ${rows.length === 1 ? "main character" : `${rows.length} main characters`} in each chapter`;
  const note = "Darker: more mentions (each character's busiest chapter is darkest); empty: not mentioned.";
  const presence = rows
    .map((c) => `${c.name}: in ${number(c.chapter_mentions.filter((m) => m > 0).length)} of ${number(n)} chapters`)
    .join("; ");
  const plot = svg(
    "svg",
    {
      class: "chart-svg heatmap-svg",
      role: "img",
      "aria-labelledby": titleId,
      viewBox: `0 0 ${n * SLOT} ${rows.length * SLOT}`,
      preserveAspectRatio: "none",
      "data-rows": rows.length,
    },
    svg("title", { id: titleId, text: `${title}: ${subtitle}` }),
    svg("desc", { text: `${presence}. ${note}` }),
  );
  plot.style.height = `${rows.length * 1.75}rem`; // one name per 1.75rem line beside it
  rows.forEach((character, row) => {
    const busiest = Math.max(...character.chapter_mentions);
    character.chapter_mentions.forEach((mentions, column) => {
      const level = mentions === 0 ? 0 : Math.max(1, Math.ceil((mentions / busiest) * HEATMAP_LEVELS));
      const label = `${character.name}, ${chapterName(chapters[column], column)}: ${number(mentions)} ${mentions === 1 ? "mention" : "mentions"}`;
      plot.append(
        svg(
          "rect",
          {
            class: `chart-cell level-${level}`,
            x: column * SLOT + gap / 2,
            y: row * SLOT + 1,
            width: SLOT - gap,
            height: SLOT - 2,
            "data-character": character.name,
            "data-chapter": chapters[column].index ?? column + 1,
            "data-value": mentions,
          },
          svg("title", { text: label }),
        ),
      );
    });
  });
  const legend = h(
    "p",
    { class: "heatmap-legend muted small", "aria-hidden": "true" },
    h("span", { text: "none" }),
    Array.from({ length: HEATMAP_LEVELS + 1 }, (_, level) =>
      svg("svg", { class: "swatch", viewBox: "0 0 10 10" }, svg("rect", { class: `chart-cell level-${level}`, x: 0, y: 0, width: 10, height: 10 })),
    ),
    h("span", { text: "most" }),
  );
  return h(
    "figure",
    { class: "chart heatmap", id },
    h("figcaption", {}, h("span", { class: "chart-title", text: title }), h("span", { class: "muted small", text: ` ${subtitle}` })),
    h(
      "div",
      { class: "chart-plot heatmap-plot" },
      h(
        "ul",
        { class: "heatmap-names", "aria-hidden": "true" },
        rows.map((c) => h("li", { title: `${c.name} (${number(c.mentions)} mentions)`, text: c.name })),
      ),
      plot,
      h("span"),
      chapterAxis(chapters),
    ),
    legend,
    h("p", { class: "chart-note muted small", text: note }),
    hiddenTable(
      `${title}: ${subtitle}`,
      ["Chapter", ...rows.map((c) => c.name)],
      chapters.map((chapter, i) => [chapterName(chapter, i), ...rows.map((c) => number(c.chapter_mentions[i]))]),
    ),
  );
}

/** The smallest of 1, 2, 5 × 10^k that is at least `value` (at least `floor`). */
function niceTop(value, floor = 1) {
  const v = Math.max(value, floor);
  const power = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 5, 10]) if (step * power >= v - 1e-9) return step * power;
  return 10 * power;
}

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Runs of consecutive non-null values, as [[index, value], …] lists. */
function runs(values) {
  const found = [];
  let current = null;
  values.forEach((v, i) => {
    if (v === null || v === undefined || !Number.isFinite(v)) {
      current = null;
      return;
    }
    if (!current) found.push((current = []));
    current.push([i, v]);
  });
  return found;
}

/**
 * A chart of a time series, one slot per point (the operations view's last hour):
 * `kind` "line" draws a line per series (a gap where a value is null), "bars"
 * stacks the series in each slot. `series`: [{key, label, className}];
 * `points`: objects with `at` and each series' key. The figure carries
 * `data-sum-<key>` and `data-last-<key>` so the numbers can be read back, the
 * SVG is focusable with a name and a description of the latest and highest
 * values, each slot has a tooltip, and "Show the numbers" opens a table of them.
 */
export function timeSeriesChart({ id, title, subtitle, points, series, kind, format, unitLabel, floor = 1 }) {
  const titleId = uid(`${id}-title`);
  const noteId = uid(`${id}-note`);
  const n = Math.max(points.length, 1);
  const value = (p, key) => (typeof p[key] === "number" && Number.isFinite(p[key]) ? p[key] : null);
  const height = (p) =>
    kind === "bars" ? series.reduce((sum, s) => sum + (value(p, s.key) ?? 0), 0) : Math.max(0, ...series.map((s) => value(p, s.key) ?? 0));
  const highest = points.reduce((best, p, i) => (height(p) > height(points[best]) ? i : best), 0);
  const top = niceTop(points.length ? height(points[highest]) : 0, floor);
  const y = (v) => BAR_HEIGHT - (Math.min(v, top) / top) * BAR_HEIGHT;
  const plot = svg(
    "svg",
    {
      class: `chart-svg series-svg series-${kind}`,
      role: "img",
      tabindex: 0,
      "aria-labelledby": titleId,
      "aria-describedby": noteId,
      viewBox: `0 0 ${n * SLOT} ${BAR_HEIGHT}`,
      preserveAspectRatio: "none",
    },
    svg("title", { id: titleId, text: `${title}: ${subtitle}` }),
  );
  for (const tick of [0.25, 0.5, 0.75]) {
    plot.append(svg("line", { class: "grid", x1: 0, x2: n * SLOT, y1: BAR_HEIGHT * tick, y2: BAR_HEIGHT * tick, "vector-effect": "non-scaling-stroke" }));
  }
  if (kind === "bars") {
    points.forEach((p, i) => {
      let base = BAR_HEIGHT;
      for (const s of series) {
        const v = value(p, s.key) ?? 0;
        if (v <= 0) continue;
        const shown = Math.max(BAR_HEIGHT - y(v), 0.75);
        base -= shown;
        plot.append(svg("rect", { class: `series-bar ${s.className}`, x: i * SLOT + 1, y: base, width: SLOT - 2, height: shown, "data-key": s.key, "data-value": v }));
      }
    });
  } else {
    for (const s of series) {
      for (const run of runs(points.map((p) => value(p, s.key)))) {
        // A lone point is drawn across its slot, so that it shows.
        const coords = run.length === 1 ? [[run[0][0] * SLOT + 1, run[0][1]], [run[0][0] * SLOT + SLOT - 1, run[0][1]]] : run.map(([i, v]) => [i * SLOT + SLOT / 2, v]);
        plot.append(
          svg("polyline", {
            class: `series-line ${s.className}`,
            points: coords.map(([x, v]) => `${x},${y(v).toFixed(2)}`).join(" "),
            "vector-effect": "non-scaling-stroke",
            "data-key": s.key,
          }),
        );
      }
    }
  }
  // One transparent slot per point, for its tooltip.
  points.forEach((p, i) => {
    const parts = series.map((s) => `${s.label}: ${value(p, s.key) === null ? "—" : format(value(p, s.key))}`);
    plot.append(svg("rect", { class: "series-slot", x: i * SLOT, y: 0, width: SLOT, height: BAR_HEIGHT }, svg("title", { text: `${clock(p.at)} · ${parts.join(", ")}` })));
  });

  const last = points[points.length - 1];
  const figure = h("figure", { class: "chart series-chart", id });
  const parts = [];
  for (const s of series) {
    const values = points.map((p) => value(p, s.key)).filter((v) => v !== null);
    const sum = values.reduce((a, b) => a + b, 0);
    figure.dataset[`sum${s.key.replace(/(^|_)(\w)/g, (_, __, c) => c.toUpperCase())}`] = String(sum);
    const latest = last ? value(last, s.key) : null;
    figure.dataset[`last${s.key.replace(/(^|_)(\w)/g, (_, __, c) => c.toUpperCase())}`] = latest === null ? "" : String(latest);
    if (kind === "bars") {
      parts.push(`${s.label}: ${format(sum)} in all`);
    } else if (latest !== null) {
      parts.push(`${s.label} now ${format(latest)}`);
    } else {
      // The latest minute that has a value (a minute without completions has no latency).
      const at = points.findLastIndex((p) => value(p, s.key) !== null);
      parts.push(at < 0 ? `${s.label}: none in this window` : `${s.label} ${format(value(points[at], s.key))} at ${clock(points[at].at)}`);
    }
  }
  if (points.length && height(points[highest]) > 0) parts.push(`highest at ${clock(points[highest].at)} (${format(height(points[highest]))})`);
  const note = `${parts.join("; ")}.`;
  plot.append(svg("desc", { text: note }));
  const legend = h(
    "ul",
    { class: "series-legend small", "aria-hidden": "true" },
    series.map((s) => h("li", {}, svg("svg", { class: "swatch", viewBox: "0 0 10 10" }, svg("rect", { class: `swatch-${kind} ${s.className}`, x: 0, y: kind === "bars" ? 0 : 4, width: 10, height: kind === "bars" ? 10 : 2 })), h("span", { text: s.label }))),
  );
  const table = h(
    "table",
    { class: "chart-data series-data" },
    h("caption", { class: "visually-hidden", text: `${title}: ${subtitle}` }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Minute" }), series.map((s) => h("th", { scope: "col", text: `${s.label} (${unitLabel})` })))),
    h(
      "tbody",
      {},
      points.map((p) => h("tr", {}, h("th", { scope: "row", text: clock(p.at) }), series.map((s) => h("td", { text: value(p, s.key) === null ? "—" : format(value(p, s.key)) })))),
    ),
  );
  const minutes = points.length;
  const xLabels = [`${minutes} min ago`, `${Math.round(minutes / 2)} min ago`, "now"];
  return append(figure, [
    h("figcaption", {}, h("span", { class: "chart-title", text: title }), h("span", { class: "muted small", text: ` ${subtitle}` })),
    legend,
    h(
      "div",
      { class: "chart-plot" },
      h("div", { class: "chart-axis-y", "aria-hidden": "true" }, h("span", { text: format(top) }), h("span", { text: format(0) })),
      plot,
      h("span"),
      h("div", { class: "chart-axis-x", "aria-hidden": "true", dataset: { count: "3" } }, xLabels.map((t) => h("span", { text: t }))),
    ),
    h("p", { class: "chart-note muted small", id: noteId, text: note }),
    h("details", { class: "chart-numbers" }, h("summary", { text: "Show the numbers" }), h("div", { class: "table-wrap" }, table)),
  ]);
}
