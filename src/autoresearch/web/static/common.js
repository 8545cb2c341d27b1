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

function phaseText(live, elapsed) {
  if (!live) return "";
  const label = PHASES[live.phase] || live.phase;
  let text = `iteration ${live.iteration}: ${label}, ${clock(elapsed)}`;
  if (live.budget_secs) text += ` (${clock(live.budget_secs - elapsed)} of the budget left)`;
  const others = live.in_flight || [];
  if (others.length) {
    const many = others.length === 1 ? "1 iteration" : `${others.length} iterations`;
    text += `; training too: ${many} (${others.join(", ")})`;
  }
  return text;
}
