// The progress chart, drawn as SVG: every iteration a point (a failed one a cross on the floor),
// the running best as a step line, the noise band around it and holdout metrics when the run
// has them. The y-axis holds the useful range (the baseline and keeps with a margin, and what
// lies near them); a point far outside is drawn at the edge as a triangle.
"use strict";

const W = 900, H = 320, M = { left: 60, right: 16, top: 14, bottom: 34 };

function usefulRange(iterations, sigma) {
  const values = iterations.filter((it) => it.value !== null).map((it) => it.value);
  if (!values.length) return [0, 1];
  const kept = iterations.filter((it) => ["baseline", "keep"].includes(it.status) && it.value !== null).map((it) => it.value);
  const core = kept.length ? kept : values;
  let lo = Math.min(...core), hi = Math.max(...core);
  const margin = Math.max((hi - lo) * 0.5, Math.abs(hi) * 0.01, 2 * (sigma || 0), 1e-9);
  let low = lo - margin, high = hi + margin;
  for (const v of values) {  // points near the trajectory stay on the chart
    if (v < low && v >= lo - 4 * margin) low = v - margin * 0.2;
    if (v > high && v <= hi + 4 * margin) high = v + margin * 0.2;
  }
  return [low, high];
}

function bestSoFar(iterations, direction) {
  let best = null;
  return iterations.map((it) => {
    if (["baseline", "keep"].includes(it.status) && it.value !== null) {
      if (best === null || (direction === "minimize" ? it.value < best : it.value > best)) best = it.value;
    }
    return best;
  });
}

function drawChart(container, snap, onPick) {
  // what it drew ({noise, holdout}), for the legend
  const its = snap.iterations;
  const sigma = snap.noise && snap.noise.sigma;
  if (!its.some((it) => it.value !== null)) {  // nothing scored: say why, not an empty 0-1 plot
    const base = its[0];
    const why = base && base.status === "crash" ? `the baseline crashed: ${base.reason || "no score"}`
      : "no score yet: the baseline is training";
    container.replaceChildren(el("p", { class: `empty${base && base.status === "crash" ? " error" : " hint"}` }, why));
    return { noise: false, holdout: false };
  }
  const [low, high] = usefulRange(its, sigma);
  const last = Math.max(1, its.length ? its[its.length - 1].iteration : 1);
  const x = (i) => M.left + (i / last) * (W - M.left - M.right);
  const y = (v) => M.top + (1 - (v - low) / (high - low)) * (H - M.top - M.bottom);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  // axes and ticks
  const yTicks = niceTicks(low, high);
  for (const v of yTicks.ticks) {
    svg.append(el("svg:line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: "grid" }),
      el("svg:text", { x: M.left - 6, y: y(v) + 4, class: "tick y-tick", "text-anchor": "end" }, yTicks.label(v)));
  }
  const xTicks = niceTicks(0, last, Math.min(last, 10), true);
  for (const i of xTicks.ticks) {
    svg.append(el("svg:text", { x: x(i), y: H - M.bottom + 16, class: "tick x-tick", "text-anchor": "middle" }, xTicks.label(i)));
  }
  svg.append(el("svg:text", { x: (W + M.left) / 2, y: H - 4, class: "label", "text-anchor": "middle" }, "iteration"));
  const bests = bestSoFar(its, snap.metric.direction);
  const steps = [];
  its.forEach((it, k) => {
    if (bests[k] === null) return;
    const next = k + 1 < its.length ? its[k + 1].iteration : it.iteration;
    steps.push([x(it.iteration), y(bests[k])], [x(next), y(bests[k])]);
  });
  const drawn = { noise: Boolean(sigma && steps.length), holdout: false };
  if (drawn.noise) {  // the noise band: the best so far, plus or minus one sigma
    const up = steps.map(([px, py]) => `${px},${py - (y(0) - y(sigma))}`);
    const down = steps.map(([px, py]) => `${px},${py + (y(0) - y(sigma))}`).reverse();
    svg.append(el("svg:polygon", { points: [...up, ...down].join(" "), class: "noise" },
      el("svg:title", {}, `noise: sigma ${num(sigma)} from ${snap.noise.runs} runs`)));
  }
  if (steps.length) svg.append(el("svg:polyline", { points: steps.map((p) => p.join(",")).join(" "), class: "best" }));
  // holdout and other recorded metrics: the kept trajectory on each, a step function of the kept
  // iterations (the best's holdout holds until the next keep), to the last iteration
  const others = new Set();
  its.forEach((it) => Object.keys(it.metrics || {}).forEach((name) => name !== snap.metric.name && others.add(name)));
  for (const name of others) {
    const kept = its.filter((it) => ["baseline", "keep"].includes(it.status) && it.metrics && it.metrics[name] !== undefined && it.metrics[name] !== null);
    const pts = kept.map((it) => [x(it.iteration), y(Math.min(high, Math.max(low, it.metrics[name])))]);
    if (!pts.length) continue;
    const end = x(its[its.length - 1].iteration);
    const held = pts.flatMap(([px, py], k) => [[px, py], [k + 1 < pts.length ? pts[k + 1][0] : end, py]]);
    svg.append(el("svg:polyline", { points: held.map((p) => p.join(",")).join(" "), class: "holdout" },
      el("svg:title", {}, name)));
    drawn.holdout = true;
    pts.forEach(([px, py], k) => svg.append(el("svg:circle", { cx: px, cy: py, r: 3, class: "holdout-point" },
      el("svg:title", {}, `iteration ${kept[k].iteration}: ${name} ${num(kept[k].metrics[name])}`))));
  }
  // one mark per iteration
  for (const it of its) {
    const tip = `iteration ${it.iteration}: ${it.status} ${num(it.value)} ${it.description || ""}`;
    const attrs = { class: `point status-${it.status}`, "data-iteration": it.iteration, onclick: () => onPick(it.iteration) };
    let mark;
    if (it.value === null) {
      const px = x(it.iteration), py = H - M.bottom - 4;
      mark = el("svg:path", { ...attrs, d: `M${px - 4},${py - 4}L${px + 4},${py + 4}M${px - 4},${py + 4}L${px + 4},${py - 4}`, class: `${attrs.class} failed` });
    } else if (it.value < low || it.value > high) {
      const px = x(it.iteration), py = it.value < low ? H - M.bottom - 2 : M.top + 2, d = it.value < low ? -6 : 6;
      mark = el("svg:path", { ...attrs, d: `M${px - 5},${py - d}L${px + 5},${py - d}L${px},${py}Z`, class: `${attrs.class} outlier` });
    } else {
      mark = el("svg:circle", { ...attrs, cx: x(it.iteration), cy: y(it.value), r: it.status === "keep" ? 5 : 4 });
    }
    mark.append(el("svg:title", {}, tip));
    svg.append(mark);
  }
  const versions = ((snap.strategist && snap.strategist.strategies) || []).filter((s) => s.version !== null && s.after_iteration >= 0);
  for (const s of versions) {  // a new strategy takes effect after this iteration
    const sx = x(s.after_iteration + 0.5);
    svg.append(el("svg:line", { x1: sx, x2: sx, y1: M.top, y2: H - M.bottom, class: "strategy" },
      el("svg:title", {}, `strategy version ${s.version}`)));
  }
  container.replaceChildren(svg);
  return drawn;
}
