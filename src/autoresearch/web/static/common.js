// Shared by the pages: building DOM from data (text only, never HTML), formatting, fetching.
"use strict";

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === "") continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function num(value, digits = 4) {
  return value === null || value === undefined ? "" : Number(value).toFixed(digits);
}

function money(value) {
  return value === null || value === undefined ? "unknown" : "$" + Number(value).toFixed(2);
}

function clock(seconds) {
  if (seconds === null || seconds === undefined) return "?";
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  const two = (x) => String(x).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

async function getJSON(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.json();
}

const PHASES = {
  proposing: "agent thinking",
  training: "training",
  confirming: "confirming",
  strategist: "strategist thinking",
};

function budgetText(live, elapsed) {
  // as the terminal says it: the budget left, or past it the grace before the experiment is killed
  if (!live.budget_secs) return "";
  if (elapsed <= live.budget_secs) return `${clock(live.budget_secs - elapsed)} of the budget left`;
  const grace = live.grace_secs || 0;
  return `over budget: in grace ${clock(Math.min(elapsed - live.budget_secs, grace))} of ${clock(grace)}`;
}

function phaseText(live, elapsed) {
  if (!live) return "";
  let label = PHASES[live.phase] || live.phase;
  if (live.phase === "confirming" && live.runs) label += ` (run ${live.run || 1} of ${live.runs})`;
  let text = `iteration ${live.iteration}: ${label}, ${clock(elapsed)}`;
  if (live.budget_secs) text += ` (${budgetText(live, elapsed)})`;
  if (live.first !== null && live.first !== undefined) text += `; first run ${num(live.first)}`;
  const others = live.in_flight || [];
  if (others.length) {
    const many = others.length === 1 ? "1 iteration" : `${others.length} iterations`;
    text += `; training too: ${many} (${others.join(", ")})`;
  }
  return text;
}

function titled(run) {
  // a run as it is listed everywhere: its id, and its name (run --name) when it has one
  return run.name ? `${run.run} (${run.name})` : run.run;
}

function niceTicks(low, high, count = 5, integer = false) {
  // axis ticks at round values (1, 2 or 5 times a power of ten) inside [low, high], and the
  // decimals that tell them apart
  const span = high - low, rough = span / count;
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  let step = [1, 2, 5, 10].map((m) => m * power)
    .reduce((a, b) => (Math.abs(Math.log(b / rough)) < Math.abs(Math.log(a / rough)) ? b : a));
  if (integer) step = Math.max(1, Math.round(step));
  const digits = integer ? 0 : Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks = [];
  for (let v = Math.ceil(low / step - 1e-9) * step; v <= high + step * 1e-9; v += step) ticks.push(v);
  return { ticks, label: (v) => v.toFixed(digits) };
}
