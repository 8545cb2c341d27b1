// A run's page: header, live phase, chart, strategy versions, iterations and the one picked.
// It follows the run without reloading: an event stream says when something changed.
"use strict";

const runId = decodeURIComponent(location.pathname.split("/").pop());
const api = `/api/runs/${encodeURIComponent(runId)}`;
let snap = null, picked = null, liveNow = null, liveAt = 0, loading = null;

function showError(err) {
  document.getElementById("error").textContent = err ? String(err.message || err) : "";
}

async function load() {
  if (loading) return loading;
  loading = (async () => {
    try {
      snap = await getJSON(api);
      render();
      showError(null);
    } catch (err) {
      showError(err);
    } finally {
      loading = null;
    }
  })();
  return loading;
}

function render() {
  document.getElementById("run-id").textContent = titled(snap);
  document.title = `autoresearch: ${titled(snap)}`;
  document.getElementById("metric-name").textContent = snap.metric.name;
  const best = snap.best.iteration === null ? "no score yet"
    : `best ${snap.metric.name} ${num(snap.best.value)} at iteration ${snap.best.iteration}`;
  const done = Math.max(0, snap.iterations.length - 1);
  const parts = [snap.state, `${done} of ${snap.iterations_planned} iterations`, best, `cost ${money(snap.cost_usd)}`];
  if (snap.noise && snap.noise.sigma !== null && snap.noise.sigma !== undefined) parts.push(`noise sigma ${num(snap.noise.sigma)} (${snap.noise.runs} runs)`);
  if (snap.eta_secs) parts.push(`ETA ${clock(snap.eta_secs)}`);
  if (snap.state !== "running" && snap.stop_reason) parts.push(snap.stop_reason);
  document.getElementById("summary").textContent = parts.join(" · ");
  const drawn = drawChart(document.getElementById("chart"), snap, pick);
  const legend = ["baseline", "keep", "discard", "crash", "invalid"].map((s) => el("span", { class: `key status-${s}` }, s));
  legend.push(el("span", { class: "key best-key" }, "best so far"));
  if (drawn.noise) legend.push(el("span", { class: "key noise-key" }, "noise band (±1 sigma)"));
  if (drawn.holdout) legend.push(el("span", { class: "key holdout-key" }, "holdout (kept)"));
  document.getElementById("legend").replaceChildren(...legend);
  renderTree();
  renderStrategies();
  renderVerdicts(snap); // verdicts.js: promotions, the ablation, suspicious keeps
  const body = document.querySelector("#iterations tbody");
  body.replaceChildren(...snap.iterations.map((it) => {
    let text = it.description || "";
    if (it.reason && ["crash", "invalid"].includes(it.status)) text = `${text} [${it.reason}]`;
    return el("tr", { class: `iteration${it.iteration === picked ? " picked" : ""}`, "data-iteration": it.iteration, onclick: () => pick(it.iteration) },
      el("td", { class: "num" }, it.iteration),
      el("td", { class: `status-${it.status}` }, it.status),
      el("td", { class: "num" }, num(it.value)),
      el("td", { class: "num" }, num(it.cost_usd, 3)),
      el("td", { class: "num" }, num(it.train_seconds, 1)),
      el("td", { class: "description", title: text }, text));
  }));
  showLive(liveNow || { state: snap.state, live: snap.live, log: [] });
}

function renderTree() {
  // the iterations by parent (status --json's parent; a merge is listed under its first parent
  // and names its second); the best's line (it and its first parents up to the baseline) in
  // bold, the best marked; a click shows the iteration
  const children = new Map();
  const byNumber = new Map(snap.iterations.map((it) => [it.iteration, it]));
  for (const it of snap.iterations) {
    const key = it.parent === null || it.parent === undefined ? "root" : it.parent;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(it);
  }
  const line = new Set();
  for (let at = byNumber.get(snap.best.iteration); at && !line.has(at.iteration); at = byNumber.get(at.parent)) line.add(at.iteration);
  document.getElementById("tree").hidden = snap.iterations.length < 2;
  const node = (it) => {
    const merge = it.second_parent === null || it.second_parent === undefined ? "" : ` (merges ${it.second_parent})`;
    const fixed = it.repairs ? ` (after ${it.repairs} repair${it.repairs > 1 ? "s" : ""})` : "";
    const kids = children.get(it.iteration) || [];
    const best = it.iteration === snap.best.iteration;
    return el("li", { "data-iteration": it.iteration, class: best ? "best-line best" : line.has(it.iteration) ? "best-line" : "",
      onclick: (e) => { e.stopPropagation(); pick(it.iteration); } },
      el("span", { class: `status-${it.status}` }, `${it.iteration} ${it.status} ${num(it.value)}`),
      best ? el("b", { class: "best-mark" }, " ★ best") : "",
      ` ${it.description || ""}${merge}${fixed}`,
      kids.length ? el("ul", {}, ...kids.map(node)) : "");
  };
  document.getElementById("tree-list").replaceChildren(...(children.get("root") || []).map(node));
}

function renderStrategies() {
  // every strategist call (status --json's strategist.strategies); version null: a rejected reply
  const calls = (snap.strategist && snap.strategist.strategies) || [];
  document.getElementById("strategies").hidden = !calls.length;
  document.getElementById("strategy-list").replaceChildren(...calls.map((s) => {
    const when = s.after_iteration < 0 ? " (program.md)" : ` after iteration ${s.after_iteration} (${s.trigger})`;
    return s.version === null
      ? el("li", { class: "rejected" }, el("b", {}, "rejected"), when, `: ${s.reason || ""}`)
      : el("li", {}, el("b", {}, `version ${s.version}`), when, el("pre", {}, s.text || ""));
  }));
}

async function pick(n) {
  picked = n;
  document.querySelectorAll("#iterations tr.iteration").forEach((row) => row.classList.toggle("picked", Number(row.dataset.iteration) === n));
  const box = document.getElementById("detail");
  try {
    const it = await getJSON(`${api}/iterations/${n}`);
    if (picked !== n) return;
    box.replaceChildren(...detail(it));
  } catch (err) {
    box.replaceChildren(el("p", { class: "error" }, String(err.message || err)));
  }
}

function facts(rows) {
  return el("table", { class: "facts" }, rows.filter(([, v]) => v !== "" && v !== null && v !== undefined)
    .map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

function detail(it) {
  const metrics = [[it.metric.name, num(it.value)]];
  if (it.values) metrics.push(["runs", it.values.map((v) => num(v)).join(", ")]);
  if (it.seeds) metrics.push(["seeds", it.seeds.join(", ")]);
  for (const [name, value] of Object.entries(it.metrics || {})) if (name !== it.metric.name) metrics.push([name, num(value)]);
  if (it.reason) metrics.push(["reason", it.reason]);
  if (it.strategy !== undefined && it.strategy !== null) metrics.push(["strategy version", it.strategy]);
  const diff = (it.diff || "").split("\n").map((line) =>
    el("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "" }, line + "\n"));
  return [
    el("h2", {}, `Iteration ${it.iteration}: `, el("span", { class: `status-${it.status}` }, it.status)),
    el("h3", {}, "Explanation"), el("pre", { class: "explanation" }, it.explanation || ""),
    el("h3", {}, "Metrics"), facts(metrics),
    el("h3", {}, "Timings and cost"),
    facts([["agent", [it.agent, it.model].filter(Boolean).join(" ")], ["agent s", num(it.agent_seconds, 1)],
      ["train s", num(it.train_seconds, 1)], ["wall s", num(it.wall_seconds, 1)],
      ["peak memory MB", num(it.peak_memory_mb, 0)], ["cost", money(it.cost_usd)],
      ["tokens in / out / cached", `${it.tokens_in} / ${it.tokens_out} / ${it.tokens_cached}`],
      ["commit", it.commit], ["parent", it.parent]]),
    el("h3", {}, "Diff against its parent"),
    it.diff ? el("pre", { class: "diff" }, diff) : el("p", { class: "hint" }, "no diff (the baseline, or no usable proposal)"),
    el("h3", {}, "Training log", it.log_truncated ? " (its end)" : ""),
    it.log ? el("pre", { class: "log" }, it.log) : el("p", { class: "hint" }, "no log (nothing was trained)"),
  ];
}

function showLive(view) {
  liveNow = view;
  liveAt = Date.now();
  tick();
}

function tick() {
  const box = document.getElementById("live");
  const live = liveNow && liveNow.state === "running" ? liveNow.live : null;
  box.hidden = !live;
  if (!live) return;
  const elapsed = (live.elapsed_secs || 0) + (Date.now() - liveAt) / 1000;
  document.getElementById("phase").textContent = phaseText(live, elapsed) + (live.description ? `: ${live.description}` : "");
  const bar = document.getElementById("budget");
  bar.parentElement.hidden = !live.budget_secs;
  if (live.budget_secs) bar.style.width = `${Math.min(100, (100 * elapsed) / live.budget_secs)}%`;
  bar.classList.toggle("over", Boolean(live.budget_secs) && elapsed > live.budget_secs);
  const log = document.getElementById("live-log");
  log.textContent = (liveNow.log || []).join("\n");
  log.hidden = !log.textContent;
}

function follow() {
  const events = new EventSource(`${api}/events`);
  events.onmessage = (message) => {
    const view = JSON.parse(message.data);
    showLive(view);
    if (snap && (view.recorded !== snap.iterations.length || view.state !== snap.state)) load();
  };
}

load().then(follow);
setInterval(tick, 1000);
