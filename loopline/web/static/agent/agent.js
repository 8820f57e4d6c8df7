// The agent desktop: state, the incoming call, the screen-pop, the live transcript and the
// disposition. Everything live comes over /ws/agent (see common/live.js for resuming).
import { LiveSocket } from "/assets/common/live.js";
import { clear, duration, el, getJson, label, loadCharts, onShortcut, since } from "/assets/common/util.js";

const $ = (id) => document.getElementById(id);
const REDACTION = /\[([A-Z][A-Z_]*)\]/g;

const desk = {
  presence: "offline",
  presenceSince: null,
  wanted: null, // the state the agent last chose: restored after a reconnect
  offer: null,
  call: null, // { call_id, status, startedAt }
  lines: 0,
  sentiment: { xs: [], ys: [], chart: null },
  outcomes: [],
};
let socket = null;

function setConn(status) {
  const conn = $("conn");
  conn.dataset.state = status;
  conn.textContent = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…",
    stale: "Connection stale", offline: "Offline" }[status] || status;
}

function setPresence(presence, at) {
  if (presence !== desk.presence) desk.presenceSince = at || new Date().toISOString();
  else if (at && !desk.presenceSince) desk.presenceSince = at;
  desk.presence = presence;
  $("state-now").textContent = label(presence);
  for (const radio of document.querySelectorAll('input[name="state"]')) {
    radio.checked = radio.value === presence;
  }
  tick();
}

function choose(presence) {
  desk.wanted = presence;
  socket.send({ type: "state", state: presence });
}

function tick() {
  $("state-timer").textContent = since(desk.presenceSince);
  if (desk.offer) {
    const left = (Date.parse(desk.offer.expires_at) - Date.now()) / 1000;
    $("offer-countdown").textContent = left > 0 ? `${Math.ceil(left)} s to answer` : "expired";
  }
}

// -- the screen-pop --------------------------------------------------------------------------
function facts(dl, pairs) {
  clear(dl);
  for (const [term, value] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    dl.append(el("dt", { text: term }), el("dd", { text: String(value) }));
  }
  if (!dl.children.length) dl.append(el("dt", { text: "—" }), el("dd", { text: "nothing known" }));
}

function showPop(pop) {
  $("pop-empty").hidden = true;
  $("pop-body").hidden = false;
  const caller = pop.caller || {};
  $("pop-caller").textContent = caller.name ? `${caller.name} · ${caller.number}` : caller.number;
  $("pop-status").textContent = "ringing";
  $("pop-record").href = `/calls/${encodeURIComponent(pop.call_id)}`;
  const crm = Object.entries(pop.crm || {})
    .filter(([k, v]) => (v === null || typeof v !== "object") && !(k === "name" && v === caller.name));
  facts($("crm"), [["Number", caller.number], ["Name", caller.name], ...crm.map(([k, v]) => [label(k), v])]);
  const j = pop.journey;
  if (j) {
    facts($("journey"), [
      ["Campaign", j.campaign],
      ["Source", [j.source, j.medium].filter(Boolean).join(" / ")],
      ["Keyword", j.keyword],
      ["Landing page", j.landing_page],
      ["Time on site", j.time_on_site_s ? duration(j.time_on_site_s) : null],
      ["Match", j.confidence],
    ]);
  } else {
    facts($("journey"), [["Web visit", "none matched to this call"]]);
  }
  const pages = $("journey-pages");
  clear(pages);
  for (const page of (j && j.pages) || []) pages.append(el("li", { text: page }));
  const intent = pop.intent || {};
  $("intent-name").textContent = label(intent.name || "unknown");
  $("intent-confidence").value = intent.confidence || 0;
  $("intent-confidence-text").textContent = `${Math.round((intent.confidence || 0) * 100)}% sure`;
  const signals = $("intent-signals");
  clear(signals);
  for (const s of intent.signals || []) signals.append(el("li", { text: `${s.source}: ${s.detail}` }));
  const d = pop.decision || {};
  facts($("why"), [["Policy", d.policy], ["Queue", d.queue], ["Reason", d.reason]]);
}

function showOffer(pop) {
  desk.offer = pop;
  const caller = pop.caller || {};
  $("offer-caller").textContent = caller.name || caller.number || "Unknown caller";
  const intent = pop.intent && pop.intent.name !== "unknown" ? ` · intent ${label(pop.intent.name)}` : "";
  $("offer-meta").textContent = `Queue ${pop.decision ? pop.decision.queue : "?"}${intent}`;
  $("offer").hidden = false;
  tick();
  $("accept").focus();
}

function hideOffer() {
  desk.offer = null;
  $("offer").hidden = true;
}

function startCall(pop) {
  desk.call = { call_id: pop.call_id, status: "ringing", startedAt: Date.parse(pop.at) };
  clear($("lines"));
  desk.lines = 0;
  $("partial").textContent = "";
  desk.sentiment.xs = [];
  desk.sentiment.ys = [];
  if (desk.sentiment.chart) desk.sentiment.chart.setData([[], []]);
  $("sentiment-meter").value = 0;
  $("sentiment-text").textContent = "no reading yet";
  setDisposition(false);
}

function setStatus(status) {
  if (!desk.call) return;
  desk.call.status = status;
  $("pop-status").textContent = status;
}

// -- transcript and sentiment ----------------------------------------------------------------
function textWithRedactions(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(REDACTION)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    out.push(el("span", { class: "redacted", "aria-label": `redacted ${label(m[1].toLowerCase())}`, text: `${label(m[1].toLowerCase())} hidden` }));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

function addUtterance(ev) {
  if (!desk.call || ev.call_id !== desk.call.call_id) return;
  if (ev.type === "utterance.partial") {
    $("partial").textContent = `${ev.speaker === "agent" ? "You" : "Caller"}: ${ev.text}`;
    return;
  }
  $("partial").textContent = "";
  const who = ev.speaker === "agent" ? "You" : "Caller";
  const item = el("li", { class: ev.speaker, "data-id": ev.id || "" }, el("span", { class: "speaker", text: `${who}:` }), ...textWithRedactions(ev.text));
  const list = $("lines");
  list.append(item);
  desk.lines += 1;
  list.scrollTop = list.scrollHeight;
}

function addFlag(ev) {
  if (!desk.call || ev.call_id !== desk.call.call_id) return;
  $("lines").append(el("li", { class: "flag", text: `Compliance: ${label(ev.kind)} ${ev.detail || ""}` }));
}

async function addSentiment(ev) {
  if (!desk.call || ev.call_id !== desk.call.call_id || ev.track !== "inbound") return;
  $("sentiment-meter").value = ev.rolling;
  const word = ev.rolling > 0.25 ? "positive" : ev.rolling < -0.25 ? "negative" : "neutral";
  const trend = ev.trend > 0.05 ? "rising" : ev.trend < -0.05 ? "falling" : "steady";
  $("sentiment-text").textContent = `${word} (${ev.rolling.toFixed(2)}), ${trend}${ev.alert ? " · alert" : ""}`;
  const s = desk.sentiment;
  s.xs.push((Date.parse(ev.at) - desk.call.startedAt) / 1000);
  s.ys.push(ev.rolling);
  const uPlot = await loadCharts();
  const box = $("sentiment-chart");
  if (!uPlot) {
    box.className = "chart chart-fallback";
    box.textContent = "Chart unavailable: the chart library is not installed (make install).";
    return;
  }
  if (!s.chart) {
    s.chart = new uPlot({
      width: Math.max(240, box.clientWidth || 320), height: 90, legend: { show: false },
      scales: { x: { time: false }, y: { range: [-1, 1] } },
      axes: [{ show: false }, { size: 40, values: (u, ticks) => ticks.map((t) => t.toFixed(1)) }],
      series: [{}, { stroke: "#0b57a4", width: 2, label: "sentiment" }],
    }, [s.xs, s.ys], box);
  } else {
    s.chart.setData([s.xs, s.ys]);
  }
}

// -- disposition -----------------------------------------------------------------------------
function setDisposition(enabled) {
  for (const id of ["dispo-outcome", "dispo-value", "dispo-notes", "dispo-submit"]) $(id).disabled = !enabled;
  $("dispo-for").textContent = enabled && desk.call
    ? `For the call with ${$("pop-caller").textContent || "the caller"}.`
    : "After a call, record how it went.";
}

async function submitDisposition(ev) {
  ev.preventDefault();
  if (!desk.call || $("dispo-submit").disabled) return;
  const outcome = $("dispo-outcome").value;
  const raw = $("dispo-value").value;
  const body = { outcome, value: raw === "" ? null : Number(raw), currency: $("dispo-currency").textContent, notes: $("dispo-notes").value };
  const result = $("dispo-result");
  result.textContent = "Saving…";
  let resp;
  try {
    resp = await fetch(`/v1/calls/${encodeURIComponent(desk.call.call_id)}/disposition`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    result.textContent = "Could not reach the server; try again.";
    return;
  }
  if (resp.ok) {
    result.textContent = `Saved: ${label(outcome)}.`;
    result.dataset.saved = outcome;
    setDisposition(false);
    return;
  }
  let detail = `${resp.status}`;
  try {
    const data = await resp.json();
    detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
  } catch { /* not JSON */ }
  result.textContent = resp.status === 404 ? "This node does not take dispositions yet." : `Not saved: ${detail}`;
}

// -- the socket ------------------------------------------------------------------------------
function onEvent(ev) {
  switch (ev.type) {
    case "hello":
      if (ev.state) setPresence(ev.state, ev.state_since);
      if (desk.wanted && desk.wanted !== ev.state && ev.state === "offline") choose(desk.wanted);
      break;
    case "ack":
      if (ev.of === "state") setPresence(ev.state);
      if (ev.of === "accept" && ev.ok) { hideOffer(); setStatus("answered"); }
      if (ev.of === "accept" && !ev.ok) { hideOffer(); setStatus("missed"); }
      if (ev.of === "reject") hideOffer();
      break;
    case "agent.state":
      setPresence(ev.presence, ev.at);
      break;
    case "call.offered":
      startCall(ev);
      showPop(ev);
      showOffer(ev);
      break;
    case "call.answered":
      if (desk.call && ev.call_id === desk.call.call_id) { hideOffer(); setStatus("answered"); }
      break;
    case "call.transferred":
      if (desk.offer && ev.call_id === desk.offer.call_id) { hideOffer(); setStatus(`moved on (${ev.reason})`); }
      break;
    case "call.ended":
      if (desk.call && ev.call_id === desk.call.call_id) {
        hideOffer();
        const answered = desk.call.status === "answered";
        setStatus("ended");
        if (answered) {
          setDisposition(true);
          choose("wrap-up");
        }
      }
      break;
    case "utterance.partial":
    case "utterance.final":
      addUtterance(ev);
      break;
    case "sentiment.updated":
      addSentiment(ev);
      break;
    case "compliance.flagged":
      addFlag(ev);
      break;
    case "closed":
      setConn("offline");
      break;
    default:
      break;
  }
}

async function main() {
  const info = await getJson("/v1/desktop");
  $("who").textContent = info.agent.name;
  desk.outcomes = info.outcomes;
  const select = $("dispo-outcome");
  for (const outcome of info.outcomes) select.append(el("option", { value: outcome, text: label(outcome) }));
  $("dispo-currency").textContent = info.currency;
  setPresence(info.presence, info.presence_since);
  socket = new LiveSocket("/ws/agent", { onEvent, onStatus: setConn });
  socket.heartbeatS = info.heartbeat_s;
  socket.connect();
  window.__loopline = { socket, desk };

  for (const radio of document.querySelectorAll('input[name="state"]')) {
    radio.addEventListener("change", () => choose(radio.value));
  }
  $("accept").addEventListener("click", () => desk.offer && socket.send({ type: "accept", call_id: desk.offer.call_id }));
  $("reject").addEventListener("click", () => desk.offer && socket.send({ type: "reject", call_id: desk.offer.call_id, reason: "rejected by agent" }));
  $("dispo").addEventListener("submit", submitDisposition);
  $("dispo").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) submitDisposition(ev);
  });
  onShortcut({
    a: () => $("accept").click(), A: () => $("accept").click(),
    r: () => $("reject").click(), R: () => $("reject").click(),
    1: () => choose("available"), 2: () => choose("away"), 3: () => choose("wrap-up"),
    d: () => $("dispo-outcome").focus(), D: () => $("dispo-outcome").focus(),
    t: () => $("lines").focus(), T: () => $("lines").focus(),
  });
  $("lines").tabIndex = 0;
  setInterval(tick, 1000);
}

main();
