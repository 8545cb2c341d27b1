// The runs list: every run of the workspace, refreshed every few seconds.
"use strict";

async function showRuns() {
  const body = document.querySelector("#runs tbody");
  try {
    const runs = await getJSON("/api/runs");
    body.replaceChildren(...runs.map((run) => {
      const link = el("a", { href: `/runs/${encodeURIComponent(run.run)}` }, titled(run));
      if (run.error) return el("tr", { class: "run" }, el("td", {}, link), el("td", { colspan: 5, class: "error" }, run.error));
      const best = run.best.iteration === null ? "none yet"
        : `${run.metric.name} ${num(run.best.value)} (iteration ${run.best.iteration})`;
      return el("tr", { class: "run", "data-run": run.run },
        el("td", {}, link),
        el("td", { class: `state-${run.state}` }, run.state),
        el("td", {}, run.live ? phaseText(run.live, run.live.elapsed_secs) : ""),
        el("td", { class: "num" }, `${Math.max(0, run.recorded - 1)} of ${run.iterations_planned}`),
        el("td", {}, best),
        el("td", { class: "num" }, money(run.cost_usd)));
    }));
    if (!runs.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 6 }, "no runs yet: start one with autoresearch run")));
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = String(err.message || err);
  }
}

showRuns();
setInterval(showRuns, 5000);
