// The run page's verdicts (status --json's promotions, ablation and suspicious): do the keeps
// hold at a longer budget, what each kept change contributes, and which keeps deserve a doubt.
"use strict";

function signed(value) {
  return value === null || value === undefined ? "" : (value >= 0 ? "+" : "") + Number(value).toFixed(4);
}

function verdictTable(headers, rows) {
  return el("table", { class: "verdict" },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))))));
}

function renderVerdicts(snap) {
  const promotions = snap.promotions || [], flags = snap.suspicious || [], ablation = snap.ablation;
  const parts = [];
  if (promotions.length) {
    parts.push(el("h3", {}, "Promotion: the best and the baseline at a longer budget"));
    parts.push(verdictTable(["budget s", "best", "best runs", "baseline runs", "gain", "holds", "where"],
      promotions.map((p) => [num(p.budget_secs, 0), p.best_iteration, p.best_values.map((v) => num(v)).join(", "),
        p.baseline_values.map((v) => num(v)).join(", "), signed(p.gain),
        p.holds ? "yes" : `no: ${p.reason || ""}`, p.where || "the run's own"])));
  }
  if (ablation) {
    parts.push(el("h3", {}, `Ablation of iteration ${ablation.best_iteration}: what each kept change contributes`));
    parts.push(verdictTable(["keep", "change", "contribution", "±", "runs without it"],
      ablation.changes.map((c) => [c.iteration, c.description + (c.reason ? ` (${c.reason})` : ""),
        signed(c.contribution), num(c.spread), c.values.map((v) => num(v)).join(", ")])));
  }
  if (flags.length) {
    parts.push(el("h3", {}, "Keeps worth a second look"));
    parts.push(el("ul", { class: "suspicious" }, ...flags.flatMap((f) => f.reasons.map((r) => el("li", {}, `iteration ${f.iteration}: ${r}`)))));
  }
  document.getElementById("verdicts").hidden = !parts.length;
  document.getElementById("verdict-body").replaceChildren(...parts);
  const doubts = new Map(flags.map((f) => [f.iteration, f.reasons.join("; ")]));
  document.querySelectorAll("#iterations tr.iteration").forEach((row) => {
    const reason = doubts.get(Number(row.dataset.iteration));
    row.classList.toggle("suspicious", Boolean(reason));
    if (reason) row.title = `suspicious: ${reason}`;
  });
}
