// The comparison page: pick runs, see the table of `autoresearch compare` and every run's best so
// far against the iteration (and the agent cost). It refreshes every few seconds, so runs in
// progress move on the page; the picked runs are kept in the address (?run=A&run=B).
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const CH = 300, CM = { left: 60, right: 24, top: 12, bottom: 34 };
let allRuns = [], picked = null;

function showError(err) {
  document.getElementById("error").textContent = err ? String(err.message || err) : "";
}

function pickedFromAddress() {
  const runs = new URLSearchParams(location.search).getAll("run");
  return runs.length ? runs : null;  // null: every run
}

function renderPicker() {
  const box = document.getElementById("picker");
  box.replaceChildren(...allRuns.map((run) => {
    const on = picked === null || picked.includes(run.run);
    const input = el("input", { type: "checkbox", value: run.run, checked: on, onchange: onPick });
    const state = run.error ? "unreadable" : run.state;
    return el("label", { class: "pick", "data-run": run.run }, input, ` ${titled(run)} `, el("span", { class: `state-${state}` }, state));
  }));
}

function onPick() {
  const on = [...document.querySelectorAll("#picker input:checked")].map((input) => input.value);
  picked = on.length === allRuns.length ? null : on;
  const query = picked === null ? "" : "?" + picked.map((r) => `run=${encodeURIComponent(r)}`).join("&");
  history.replaceState(null, "", location.pathname + query);
  refresh();
}

function renderTable(data) {
  const t = data.table;
  const cls = (n) => (t.highlighted[n] ? "differs" : "");
  document.querySelector("#comparison thead").replaceChildren(el("tr", {},
    t.headers.map((h, n) => el("th", { class: cls(n) }, h))));
  document.querySelector("#comparison tbody").replaceChildren(...t.rows.map((cells, k) =>
    el("tr", { class: "compared", "data-run": data.runs[k].run },
      cells.map((c, n) => el("td", { class: cls(n) }, n === 0 ? el("a", { href: `/runs/${encodeURIComponent(data.runs[k].run)}` }, c) : c)))));
  document.getElementById("notes").replaceChildren(...t.notes.map((note) => el("li", {}, note)));
}

function overlay(container, data, xs, xlabel, integer, colorOf, CW) {
  const series = data.runs.map((run) => ({ run, color: colorOf(run.run), pts: xs(run) }))
    .map((s) => ({ ...s, pts: s.pts.filter(([, v]) => v !== null) }));
  const ys = series.flatMap((s) => s.pts.map(([, v]) => v)), xv = series.flatMap((s) => s.pts.map(([x]) => x));
  if (!ys.length) { container.replaceChildren(el("p", { class: "hint" }, "no scores yet")); return; }
  let low = Math.min(...ys), high = Math.max(...ys);
  const margin = Math.max((high - low) * 0.08, Math.abs(high) * 0.005, 1e-9);
  low -= margin; high += margin;
  const last = Math.max(...xv) || 1;
  const x = (v) => CM.left + (v / last) * (CW - CM.left - CM.right);
  const y = (v) => CM.top + (1 - (v - low) / (high - low)) * (CH - CM.top - CM.bottom);
  const svg = el("svg:svg", { viewBox: `0 0 ${CW} ${CH}`, class: "chart", role: "img", "aria-label": xlabel });
  const yTicks = niceTicks(low, high);
  for (const v of yTicks.ticks) {
    svg.append(el("svg:line", { x1: CM.left, x2: CW - CM.right, y1: y(v), y2: y(v), class: "grid" }),
      el("svg:text", { x: CM.left - 6, y: y(v) + 4, class: "tick y-tick", "text-anchor": "end" }, yTicks.label(v)));
  }
  const xTicks = niceTicks(0, last, integer ? Math.min(last, 10) : 4, integer);
  for (const v of xTicks.ticks) {
    svg.append(el("svg:text", { x: x(v), y: CH - CM.bottom + 16, class: "tick x-tick", "text-anchor": "middle" }, xTicks.label(v)));
  }
  svg.append(el("svg:text", { x: (CW + CM.left) / 2, y: CH - 4, class: "label", "text-anchor": "middle" }, xlabel));
  for (const s of series) {
    const steps = [];
    s.pts.forEach(([px, v], k) => {
      if (k) steps.push([x(px), y(s.pts[k - 1][1])]);
      steps.push([x(px), y(v)]);
    });
    svg.append(el("svg:polyline", { points: steps.map((p) => p.join(",")).join(" "), class: "run-line", "data-run": s.run.run, "data-points": s.pts.length, stroke: s.color, fill: "none", "stroke-width": 1.8 },
      el("svg:title", {}, titled(s.run))));
    for (const [px, v] of s.pts) {
      svg.append(el("svg:circle", { cx: x(px), cy: y(v), r: 2.5, fill: s.color, class: "run-point", "data-run": s.run.run },
        el("svg:title", {}, `${s.run.run}: ${num(v)} at ${px}`)));
    }
  }
  container.replaceChildren(svg);
}

function renderCharts(data) {
  const colors = new Map(data.runs.map((run, k) => [run.run, COLORS[k % COLORS.length]]));
  const colorOf = (id) => colors.get(id);
  // one panel (no costs): the whole width, drawn wider; two: side by side
  const width = data.has_costs ? 560 : 900;
  document.querySelector(".charts").classList.toggle("one", !data.has_costs);
  overlay(document.getElementById("by-iteration"), data, (run) => run.best_so_far.map((v, n) => [n, v]), "iteration", true, colorOf, width);
  const byCost = document.getElementById("by-cost");
  byCost.hidden = !data.has_costs;
  if (data.has_costs) {
    const priced = { ...data, runs: data.runs.filter((run) => run.cumulative_cost !== null) };
    overlay(byCost, priced, (run) => run.cumulative_cost.map((c, n) => [c, run.best_so_far[n]]), "cumulative agent cost ($)", false, colorOf, width);
  }
  const unknown = data.runs.filter((run) => run.cumulative_cost === null).map((run) => run.run);
  const keys = data.runs.map((run) => el("span", { class: "key", style: `color: ${colorOf(run.run)}` }, titled(run)));
  if (data.has_costs && unknown.length) keys.push(el("span", {}, `cost unknown: ${unknown.join(", ")}`));
  document.getElementById("legend").replaceChildren(...keys);
}

async function refresh() {
  try {
    allRuns = (await getJSON("/api/runs")).reverse();  // oldest first, as the table
    if (!document.querySelector("#picker input")) renderPicker();
    else allRuns.forEach((run) => {  // new runs join the picker; the picks stay
      if (!document.querySelector(`#picker label[data-run="${CSS.escape(run.run)}"]`)) renderPicker();
    });
    const query = picked === null ? "" : "?" + picked.map((r) => `run=${encodeURIComponent(r)}`).join("&");
    const data = await getJSON(`/api/compare${query}`);
    if (picked === null) {  // every run: those the comparison left out (never scored) unticked
      const shown = new Set(data.runs.map((run) => run.run));
      document.querySelectorAll("#picker input").forEach((input) => { input.checked = shown.has(input.value); });
    }
    renderTable(data);
    renderCharts(data);
    document.getElementById("summary").textContent = `${data.runs.length} runs · ${data.metric} (${data.direction})`;
    showError(null);
  } catch (err) {  // runs that cannot be compared (another task, metric or direction): why
    showError(err);
    document.querySelector("#comparison tbody").replaceChildren();
  }
}

picked = pickedFromAddress();
refresh();
setInterval(refresh, 3000);
