// The live monitor: every live call, the agents, the queues and alerts, over /ws/supervisor.
//
// Smooth at hundreds of calls: the server coalesces interim updates and sends one frame per
// tick (?batch=1); here each event only changes the model and marks its row dirty, and one
// render per animation frame touches just the dirty rows. Durations tick once a second.
import { LiveSocket } from "/assets/common/live.js";
import { clear, duration, el, frameBatcher, getJson, label, loadCharts, maskNumber, onShortcut, percent, since } from "/assets/common/util.js";

const $ = (id) => document.getElementById(id);
const HISTORY = 120;
const calls = new Map();
const agents = new Map();
const queues = new Map();
const dirtyCalls = new Set();
const dirtyAgents = new Set();
const alerts = [];
const stats = { events: 0, renders: 0, rowsRendered: 0, perSecond: 0 };
let following = null;
let highlighted = null;
let socket = null;
let queueChart = null;
let followChart = null;
const queueSeries = { xs: [] };
let eventsThisSecond = 0;
const filters = { queue: "", intent: "", agent: "" };

// -- model -----------------------------------------------------------------------------------
function callOf(id) {
  let call = calls.get(id);
  if (!call) {
    call = { call_id: id, status: "received", caller: {}, intent: {}, sentiment: null, latest: null,
      received_at: null, queue: null, agent_id: null, hist: { xs: [], ys: [] }, row: null };
    calls.set(id, call);
  }
  return call;
}

function touch(call) {
  dirtyCalls.add(call.call_id);
  schedule();
}

function addAlert(kind, text, callId, bad = false) {
  alerts.unshift({ kind, text, callId, at: new Date(), bad });
  if (alerts.length > 50) alerts.length = 50;
  renderAlerts();
}

function apply(ev) {
  stats.events += 1;
  eventsThisSecond += 1;
  const id = ev.call_id;
  switch (ev.type) {
    case "call.received": {
      const call = callOf(id);
      call.caller = ev.caller || {};
      call.received_at = call.received_at || ev.at;
      call.campaign = ev.campaign;
      touch(call);
      break;
    }
    case "call.routed": {
      const call = callOf(id);
      call.queue = ev.decision.queue;
      call.received_at = call.received_at || ev.at;
      if (ev.outcome === "queued") call.status = "queued";
      touch(call);
      break;
    }
    case "call.offered": {
      const call = callOf(id);
      call.agent_id = ev.agent_id;
      call.caller = ev.caller || call.caller;
      call.intent = ev.intent || {};
      addIntentOption(call.intent.name);
      call.queue = (ev.decision && ev.decision.queue) || call.queue;
      call.status = "ringing";
      call.received_at = call.received_at || ev.at;
      touch(call);
      break;
    }
    case "call.queued": {
      const call = callOf(id);
      call.queue = ev.queue;
      call.status = "queued";
      call.queued_at = ev.at;
      call.received_at = call.received_at || ev.at;
      touch(call);
      break;
    }
    case "call.answered": {
      const call = callOf(id);
      call.status = "talking";
      call.agent_id = ev.agent_id;
      call.answered_at = ev.at;
      const q = queues.get(call.queue);
      if (q && call.received_at) {
        q.answered += 1;
        if ((Date.parse(ev.at) - Date.parse(call.received_at)) / 1000 <= q.service_level_s) q.in_sl += 1;
        renderQueues();
      }
      touch(call);
      break;
    }
    case "call.transferred": {
      const call = callOf(id);
      call.status = "moving on";
      call.agent_id = null;
      touch(call);
      break;
    }
    case "call.ended": {
      const call = calls.get(id);
      if (call) {
        if (call.row) call.row.remove();
        calls.delete(id);
        dirtyCalls.delete(id);
        if (call.answered_at && agents.has(call.agent_id)) {
          agents.get(call.agent_id).calls_today += 1;
          dirtyAgents.add(call.agent_id);
        }
        if (following === id) $("follow-name").textContent += " (ended)";
        updateCount();
        schedule();
      }
      break;
    }
    case "utterance.partial":
    case "utterance.final": {
      const call = calls.get(id);
      if (!call) break;
      call.latest = { speaker: ev.speaker, text: ev.text, final: ev.type === "utterance.final" };
      touch(call);
      if (following === id) followUtterance(ev);
      break;
    }
    case "sentiment.updated": {
      const call = calls.get(id);
      if (!call || ev.track !== "inbound") break;
      call.sentiment = { rolling: ev.rolling, trend: ev.trend };
      call.hist.xs.push(Date.parse(ev.at) / 1000);
      call.hist.ys.push(ev.rolling);
      if (call.hist.xs.length > HISTORY) { call.hist.xs.shift(); call.hist.ys.shift(); }
      if (ev.alert) addAlert("sentiment", `Negative sentiment: ${callerText(call)} (${ev.rolling.toFixed(2)})`, id, true);
      touch(call);
      if (following === id) drawFollowChart(call);
      break;
    }
    case "compliance.flagged": {
      const call = calls.get(id);
      addAlert("compliance", `Compliance: ${label(ev.kind)} on ${call ? callerText(call) : "a call"}`, id, true);
      break;
    }
    case "media.lag":
      addAlert("lag", `Speech recognition ${ev.lag_s.toFixed(1)} s behind on ${ev.node}`, null);
      break;
    case "agent.state": {
      const agent = agents.get(ev.agent_id);
      if (!agent) break;
      if (agent.presence !== ev.presence) agent.since = ev.at;
      agent.presence = ev.presence;
      agent.load = ev.load;
      dirtyAgents.add(ev.agent_id);
      schedule();
      break;
    }
    default:
      break;
  }
}

const intentOptions = new Set();
function addIntentOption(name) {
  if (!name || name === "unknown" || intentOptions.has(name)) return;
  intentOptions.add(name);
  $("f-intent").append(el("option", { value: name, text: label(name) }));
}

function callerText(call) {
  return call.caller && call.caller.name ? call.caller.name : maskNumber(call.caller && call.caller.number);
}

// -- render ----------------------------------------------------------------------------------
function matches(call) {
  return (!filters.queue || call.queue === filters.queue)
    && (!filters.intent || (call.intent && call.intent.name) === filters.intent)
    && (!filters.agent || call.agent_id === filters.agent);
}

function buildRow(call) {
  const follow = el("button", { type: "button", class: "linklike", "aria-label": "Follow this call" });
  follow.addEventListener("click", () => followCall(call.call_id));
  const cells = {};
  const row = el("div", { class: "row", role: "row", "data-call": call.call_id });
  row.addEventListener("click", (ev) => { if (ev.target === row || ev.target.getAttribute("role") === "cell") followCall(call.call_id); });
  const first = el("span", { role: "cell" }, follow);
  row.append(first);
  for (const name of ["queue", "agent", "status", "duration", "intent", "sentiment", "latest"]) {
    cells[name] = el("span", { role: "cell", class: name === "duration" || name === "sentiment" ? "num" : "" });
    row.append(cells[name]);
  }
  cells.caller = follow;
  call.row = row;
  call.cells = cells;
  $("call-rows").prepend(row); // newest on top
  updateCount();
  return row;
}

function renderCall(call) {
  if (!call.row) buildRow(call);
  const c = call.cells;
  c.caller.textContent = callerText(call);
  c.queue.textContent = call.queue || "—";
  c.agent.textContent = call.agent_id ? (agents.get(call.agent_id) || { name: call.agent_id }).name : "—";
  c.status.textContent = call.status;
  const intent = call.intent && call.intent.name && call.intent.name !== "unknown"
    ? `${label(call.intent.name)} ${percent(call.intent.confidence)}` : "—";
  c.intent.textContent = intent;
  if (call.sentiment) {
    const t = call.sentiment.trend;
    c.sentiment.textContent = `${t > 0.05 ? "▲" : t < -0.05 ? "▼" : "●"} ${call.sentiment.rolling.toFixed(2)}`;
    c.sentiment.className = `num ${t > 0.05 ? "trend-up" : t < -0.05 ? "trend-down" : ""}`;
  }
  if (call.latest) {
    c.latest.textContent = `${call.latest.speaker === "agent" ? "Agent" : "Caller"}: ${call.latest.text}`;
    c.latest.title = c.latest.textContent;
  }
  if (call.received_at) c.duration.textContent = since(call.answered_at || call.received_at);
  call.row.hidden = !matches(call);
  stats.rowsRendered += 1;
}

function renderAgent(agent) {
  if (!agent.row) {
    const cell = (cls) => el("span", { role: "cell", class: cls });
    agent.cells = { name: cell(""), state: cell(""), since: cell("num"), load: cell("num"), today: cell("num") };
    agent.row = el("div", { class: "row", role: "row", "data-agent": agent.id }, ...Object.values(agent.cells));
    $("agent-rows").append(agent.row);
  }
  const c = agent.cells;
  c.name.textContent = agent.name;
  c.state.textContent = label(agent.presence);
  c.state.className = `state-${agent.presence}`;
  c.state.setAttribute("role", "cell");
  c.since.textContent = agent.since ? since(agent.since) : "—";
  c.load.textContent = `${agent.load}/${agent.capacity}`;
  c.today.textContent = agent.calls_today;
}

const render = frameBatcher(() => {
  stats.renders += 1;
  for (const id of dirtyCalls) {
    const call = calls.get(id);
    if (call) renderCall(call);
  }
  dirtyCalls.clear();
  for (const id of dirtyAgents) {
    const agent = agents.get(id);
    if (agent) renderAgent(agent);
  }
  dirtyAgents.clear();
});

function schedule() {
  render();
}

function updateCount() {
  $("call-count").textContent = String(calls.size);
}

function renderAlerts() {
  const list = $("alerts");
  clear(list);
  for (const a of alerts.slice(0, 20)) {
    const item = el("li", { class: a.bad ? "bad" : "" }, `${a.at.toLocaleTimeString()} · ${a.text}`);
    if (a.callId && calls.has(a.callId)) {
      item.append(" ", el("button", { type: "button", class: "linklike", onclick: () => followCall(a.callId), text: "follow" }));
    }
    list.append(item);
  }
  $("alert-count").textContent = String(alerts.length);
}

function renderQueues() {
  const box = $("queue-cards");
  clear(box);
  for (const q of queues.values()) {
    const sl = q.answered ? percent(q.in_sl / q.answered) : "—";
    box.append(el("section", { class: "queue-card", "data-queue": q.name, "aria-label": `Queue ${q.name}` },
      el("h3", { text: q.name }),
      el("dl", {},
        el("dt", { text: "Waiting" }), el("dd", { text: q.waiting }),
        el("dt", { text: "Longest wait" }), el("dd", { text: duration(q.longest_wait_s) }),
        el("dt", { text: `Service level (${q.service_level_s} s)` }), el("dd", { text: sl }),
        el("dt", { text: "Agents free" }), el("dd", { text: q.agents_available }))));
  }
}

async function drawQueueChart() {
  const uPlot = await loadCharts();
  const box = $("queue-chart");
  if (!uPlot) {
    box.className = "chart chart-fallback";
    box.textContent = "Queue chart unavailable: the chart library is not installed (make install).";
    return;
  }
  const names = [...queues.keys()];
  const data = [queueSeries.xs, ...names.map((n) => queueSeries[n] || [])];
  if (!queueChart) {
    const colours = ["#0b57a4", "#a4141d", "#146c2e", "#8a4b00", "#5b3e96", "#0f766e"];
    queueChart = new uPlot({
      width: Math.max(300, box.clientWidth || 600), height: 120, legend: { live: false },
      // The last ten minutes, whatever the samples so far.
      scales: {
        x: { range: (u) => { const xs = u.data[0]; const last = xs.length ? xs[xs.length - 1] : Date.now() / 1000; return [last - 600, last]; } },
        y: { range: (u, min, max) => [0, Math.max(3, max)] },
      },
      series: [{}, ...names.map((n, i) => ({ label: `${n} waiting`, stroke: colours[i % colours.length], width: 2 }))],
      axes: [{}, { size: 40 }],
    }, data, box);
  } else {
    queueChart.setData(data);
  }
}

// -- following one call ----------------------------------------------------------------------
function followCall(id) {
  const call = calls.get(id);
  if (!call) return;
  following = id;
  for (const row of document.querySelectorAll("#call-rows [aria-selected]")) row.removeAttribute("aria-selected");
  if (call.row) call.row.setAttribute("aria-selected", "true");
  $("follow-name").textContent = `${callerText(call)} · ${call.queue || ""}`;
  clear($("follow-lines"));
  $("follow-partial").textContent = "";
  if (call.latest && call.latest.final) followUtterance({ speaker: call.latest.speaker, text: call.latest.text, type: "utterance.final" });
  drawFollowChart(call);
}

function followUtterance(ev) {
  const who = ev.speaker === "agent" ? "Agent" : "Caller";
  if (ev.type === "utterance.partial") {
    $("follow-partial").textContent = `${who}: ${ev.text}`;
    return;
  }
  $("follow-partial").textContent = "";
  const list = $("follow-lines");
  list.append(el("li", {}, el("span", { class: "speaker", text: `${who}:` }), ev.text));
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

async function drawFollowChart(call) {
  const uPlot = await loadCharts();
  const box = $("follow-chart");
  if (!uPlot) return;
  const data = [call.hist.xs, call.hist.ys];
  if (!followChart) {
    followChart = new uPlot({
      width: Math.max(240, box.clientWidth || 320), height: 100, legend: { show: false },
      scales: { y: { range: [-1, 1] } },
      series: [{}, { label: "caller sentiment", stroke: "#0b57a4", width: 2 }],
      axes: [{ show: false }, { size: 40, values: (u, t) => t.map((v) => v.toFixed(1)) }],
    }, data, box);
  } else {
    followChart.setData(data);
  }
}

// -- every second: durations, time in state, long holds, rate --------------------------------
function everySecond() {
  const now = Date.now();
  for (const call of calls.values()) {
    if (!call.cells || !call.received_at) continue;
    const from = call.answered_at || call.received_at;
    call.cells.duration.textContent = since(from, now);
    if (call.status === "queued" && call.queued_at && !call.longHold) {
      const q = queues.get(call.queue);
      const limit = q ? q.service_level_s * 2 : 60;
      if ((now - Date.parse(call.queued_at)) / 1000 > limit) {
        call.longHold = true;
        addAlert("hold", `Long hold: ${callerText(call)} waiting in ${call.queue}`, call.call_id);
      }
    }
  }
  for (const agent of agents.values()) {
    if (agent.cells && agent.since) agent.cells.since.textContent = since(agent.since, now);
  }
  stats.perSecond = eventsThisSecond;
  eventsThisSecond = 0;
  $("rate").textContent = `${stats.perSecond} updates/s`;
}

async function refreshQueues() {
  try {
    const rows = await getJson("/v1/queues");
    queueSeries.xs.push(Date.now() / 1000);
    for (const row of rows) {
      const q = queues.get(row.name) || { answered: 0, in_sl: 0 };
      Object.assign(q, { name: row.name, service_level_s: row.service_level_s, waiting: row.waiting,
        longest_wait_s: row.longest_wait_s, agents_available: row.agents_available });
      queues.set(row.name, q);
      (queueSeries[row.name] ||= []).push(row.waiting);
    }
    if (queueSeries.xs.length > 120) {
      queueSeries.xs.shift();
      for (const name of queues.keys()) queueSeries[name].shift();
    }
    renderQueues();
    drawQueueChart();
  } catch { /* the socket status shows trouble */ }
}

function setConn(status) {
  const conn = $("conn");
  conn.dataset.state = status;
  conn.textContent = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…",
    stale: "Connection stale", offline: "Offline" }[status] || status;
}

function moveHighlight(step) {
  const rows = [...document.querySelectorAll("#call-rows .row:not([hidden])")];
  if (!rows.length) return;
  let i = rows.findIndex((r) => r.dataset.call === highlighted);
  i = i < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, i + step));
  for (const r of rows) r.classList.remove("current");
  rows[i].classList.add("current");
  highlighted = rows[i].dataset.call;
  rows[i].querySelector("button").focus();
}

async function main() {
  const me = await getJson("/v1/me");
  $("who").textContent = me.name || me.username || me.subject;
  // The socket first, then the snapshot: events seen meanwhile are newer and win.
  socket = new LiveSocket("/ws/supervisor", { onEvent: (ev) => (ev.type === "heartbeat" || ev.type === "hello" ? null : apply(ev)), onStatus: setConn, params: { batch: "1" } });
  socket.connect();
  stats.socket = socket.stats;
  window.__loopline = { socket, stats, calls, agents, queues };
  const snap = await getJson("/v1/monitor");
  socket.heartbeatS = snap.heartbeat_s;
  for (const a of snap.agents) {
    agents.set(a.id, { ...a, since: a.presence_since, row: null });
    dirtyAgents.add(a.id);
  }
  for (const q of snap.queues) queues.set(q.name, { ...q, answered: q.answered || 0, in_sl: q.in_sl || 0 });
  for (const c of [...snap.calls].reverse()) { // oldest first, so the newest ends on top
    if (calls.has(c.call_id)) continue;
    const call = callOf(c.call_id);
    Object.assign(call, { caller: c.caller, queue: c.queue, agent_id: c.agent_id, intent: c.intent || {},
      received_at: c.received_at, answered_at: c.answered_at,
      status: c.status === "answered" ? "talking" : c.status === "offered" ? "ringing" : c.status });
    touch(call);
  }
  for (const [sel, key, values] of [["f-queue", "queue", snap.queues.map((q) => q.name)], ["f-agent", "agent", snap.agents.map((a) => a.id)]]) {
    for (const v of values) $(sel).append(el("option", { value: v, text: key === "agent" ? agents.get(v).name : v }));
  }
  for (const c of snap.calls) addIntentOption(c.intent && c.intent.name);
  for (const [sel, key] of [["f-queue", "queue"], ["f-intent", "intent"], ["f-agent", "agent"]]) {
    $(sel).addEventListener("change", () => {
      filters[key] = $(sel).value;
      for (const call of calls.values()) if (call.row) call.row.hidden = !matches(call);
    });
  }
  renderQueues();
  schedule();
  refreshQueues();
  setInterval(refreshQueues, 5000);
  setInterval(everySecond, 1000);
  onShortcut({
    j: () => moveHighlight(1), k: () => moveHighlight(-1),
    q: () => $("f-queue").focus(), i: () => $("f-intent").focus(), g: () => $("f-agent").focus(),
    Escape: () => { following = null; $("follow-name").textContent = "no call (choose one above)"; clear($("follow-lines")); },
  });
}

main();
