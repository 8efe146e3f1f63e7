// The CowWasm console: queries streamed as a table, writes with the token, the pool watched live (GET /stats).
// Plain JavaScript served by the service itself; no build step, no third-party code.
"use strict";

const $ = id => document.getElementById(id);
const tokenKey = "cowwasm-token";

// ---- the token: typed once, kept in this tab's sessionStorage (never in a cookie, so other sites cannot use it) ----
$("token").value = sessionStorage.getItem(tokenKey) ?? "";
$("token").addEventListener("change", () => {
  sessionStorage.setItem(tokenKey, $("token").value.trim());
  pollStats();
});

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = $("token").value.trim();
  if (token) h["Authorization"] = `Bearer ${token}`;
  return h;
}

async function problem(response) {
  try {
    const body = await response.json();
    return `${response.status} ${body.error ?? ""}: ${body.message ?? ""}${body.text ? ` — ${body.text}` : ""}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function show(id, text, kind) {
  const element = $(id);
  element.textContent = text;
  element.className = kind ?? "muted";
}

// ---- terms as the service writes them (docs/service.md, "Terms as JSON") back to Prolog text ----
function atomText(name) {
  return /^[a-z][A-Za-z0-9_]*$/.test(name) || /^[+\-*/\\^<>=~:.?@#&$]+$/.test(name) || name === "[]" || name === "{}" || name === "!" || name === ";"
    ? name
    : `'${name.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

const infix = new Set(["/", "//", ":", "-", "+", "*", "**", "^", "=", "\\=", "==", "\\==", "is", "<", ">", "=<", ">=", "=:=", "=\\=", "->", ";", ",", "=.."]);
const tight = new Set(["/", "//", ":", "-", "+", "*", "**", "^"]);

function termText(t) {
  if (Array.isArray(t)) return `[${t.map(termText).join(", ")}]`;
  if (t === null || typeof t !== "object") return String(t);
  if ("atom" in t) return atomText(t.atom);
  if ("string" in t) return JSON.stringify(t.string);
  if ("integer" in t) return String(t.integer);
  if ("float" in t) return String(t.float);
  if ("rational" in t) return `${t.rational.numerator}r${t.rational.denominator}`;
  if ("variable" in t) return t.variable;
  if ("functor" in t && t.args.length === 2 && infix.has(t.functor)) {
    // Operators as Prolog writes them; an operand that is itself an operator term is parenthesised (no precedence table).
    const side = a => (a && typeof a === "object" && "functor" in a && a.args.length === 2 && infix.has(a.functor) ? `(${termText(a)})` : termText(a));
    const op = t.functor;
    return tight.has(op) ? `${side(t.args[0])}${op}${side(t.args[1])}` : op === "," ? `${side(t.args[0])}, ${side(t.args[1])}` : `${side(t.args[0])} ${op} ${side(t.args[1])}`;
  }
  if ("functor" in t) return `${atomText(t.functor)}(${t.args.map(termText).join(", ")})`;
  return JSON.stringify(t);
}

// ---- queries: POST /query with "stream": true, one table row per NDJSON line as it arrives ----
let running = null;

function addRow(bindings) {
  const head = $("answers").tHead, body = $("answers").tBodies[0];
  const names = Object.keys(bindings);
  if (head.rows.length === 0) {
    const row = head.insertRow();
    for (const name of names.length ? names : ["answer"]) {
      const cell = document.createElement("th");
      cell.textContent = name;
      row.append(cell);
    }
  }
  const row = body.insertRow();
  if (names.length === 0) row.insertCell().textContent = "true";
  for (const name of names) row.insertCell().textContent = termText(bindings[name]);
}

async function runQuery(event) {
  event.preventDefault();
  running?.abort();
  const controller = new AbortController();
  running = controller;
  $("answers").tHead.replaceChildren();
  $("answers").tBodies[0].replaceChildren();
  $("run").disabled = true;
  $("stop").disabled = false;
  show("query-status", "running…");
  const started = performance.now();
  let count = 0;
  try {
    const limit = Math.max(1, parseInt($("limit").value, 10) || 100);
    const response = await fetch("query", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ goal: $("goal").value, limit, stream: true, timeoutMs: 30000 }),
    });
    if (!response.ok) { show("query-status", await problem(response), "bad"); return; }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "", final = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += value;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = JSON.parse(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
        if ("answer" in line) { addRow(line.answer); count++; } else final = line;
      }
    }
    const ms = (performance.now() - started).toFixed(0);
    if (final === null) show("query-status", `cut off after ${count} answers (deadline or connection)`, "bad");
    else if (final.result === "error") show("query-status", `error after ${count} answers: ${final.error ? termText(final.error) : final.message}`, "bad");
    else if (final.result === "failure") show("query-status", `false (${ms} ms)`);
    else show("query-status", `${count} answer${count === 1 ? "" : "s"}${final.limitReached ? " (limit reached)" : ""}${final.truncated ? " (truncated)" : ""} in ${ms} ms`, "good");
  } catch (e) {
    show("query-status", controller.signal.aborted ? `stopped after ${count} answers` : `failed: ${e.message}`, controller.signal.aborted ? "muted" : "bad");
  } finally {
    if (running === controller) running = null;
    $("run").disabled = false;
    $("stop").disabled = true;
  }
}

$("query-form").addEventListener("submit", runQuery);
$("stop").addEventListener("click", () => running?.abort());

// ---- writes: each is one transaction on the leader ----
async function write(operation) {
  const text = $("program").value.trim();
  if (!text) { show("write-status", "nothing to write", "bad"); return; }
  const body = operation === "consult" ? { text } : { clause: text };
  show("write-status", `${operation}…`);
  try {
    const response = await fetch(operation, { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) { show("write-status", await problem(response), "bad"); return; }
    const reply = await response.json();
    const extra = operation === "retract" ? (reply.retracted ? ": retracted" : ": nothing matched") : "";
    show("write-status", `${operation} committed${extra}${reply.output ? ` — output: ${reply.output}` : ""}`, "good");
    pollStats();
  } catch (e) {
    show("write-status", `failed: ${e.message}`, "bad");
  }
}

for (const operation of ["consult", "assert", "retract"]) $(operation).addEventListener("click", () => write(operation));

// ---- the pool, live: GET /stats every second; rates are differences between two polls ----
let previous = null;

function rate(now, before, key, seconds) {
  return before && now[key] !== null && before[key] !== null ? ((now[key] - before[key]) / seconds).toFixed(1) : "–";
}

async function pollStats() {
  try {
    const response = await fetch("stats", { headers: headers() });
    if (!response.ok) {
      show("connection", response.status === 401 ? "enter the token to watch the pool" : await problem(response), "bad");
      previous = null;
      return;
    }
    const now = await response.json();
    show("connection", now.health === "ok" ? "connected" : `backend ${now.health}`, now.health === "ok" ? "good" : "bad");
    $("role").textContent = `${now.role} · ${now.backend}`;
    $("stat-backend").textContent = `${now.backend}, ${now.replicas} replica${now.replicas === 1 ? "" : "s"}`;
    $("stat-busy").textContent = `${Math.min(now.readsRunning, now.replicas)} / ${now.replicas}${now.writesRunning ? " + write" : ""}`;
    $("busy-meter").value = now.replicas ? Math.min(now.readsRunning, now.replicas) / now.replicas : 0;
    $("stat-queued").textContent = now.queued;
    $("stat-sequence").textContent = now.sequence ?? "–";
    $("stat-published").textContent = now.publishedSequence ?? "not publishing";
    const seconds = previous ? now.uptimeSeconds - previous.uptimeSeconds : 0;
    if (previous && seconds > 0) {
      $("stat-reads").textContent = rate(now, previous, "reads", seconds);
      $("stat-commits-rate").textContent = rate(now, previous, "sequence", seconds);
      const commits = now.sequence - previous.sequence;
      if (commits > 0 && now.committedPages !== null) $("stat-pages").textContent = ((now.committedPages - previous.committedPages) / commits).toFixed(1);
    }
    previous = now;
  } catch (e) {
    show("connection", `not connected: ${e.message}`, "bad");
    previous = null;
  }
}

pollStats();
setInterval(pollStats, 1000);
