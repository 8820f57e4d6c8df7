// The results dashboard: six headline KPIs, a daily trend and a table by campaign (or source,
// keyword, agent, intent), from /v1/kpis. The chart is uPlot (vendored by `make install`);
// without it the trend is drawn as plain SVG bars.
import { clear, el, getJson, loadCharts, percent } from "/assets/common/util.js";

const $ = (id) => document.getElementById(id);
const money = (x) => (x === null || x === undefined ? "–" : x.toLocaleString(undefined, { maximumFractionDigits: 2 }));
const ratio = (x) => (x === null || x === undefined ? "–" : percent(x));
const times = (x) => (x === null || x === undefined ? "–" : `${x.toFixed(2)}×`);
const secs = (x) => (x === null || x === undefined ? "–" : `${Math.round(x)} s`);
const iso = (d) => d.toISOString().slice(0, 10);
let chart = null;

function query() {
  const params = new URLSearchParams({ from: $("from").value, to: $("to").value, group_by: $("group").value });
  return params;
}

function headline(t) {
  $("k-roas").textContent = times(t.roas);
  $("k-cpa").textContent = money(t.cpa);
  $("k-conv").textContent = ratio(t.conversion_rate ?? t.call_conversion_rate);
  $("k-answer").textContent = ratio(t.answer_rate);
  $("k-close").textContent = ratio(t.close_rate);
  $("k-speed").textContent = secs(t.speed_to_answer_s);
}

function row(k, name) {
  return el("tr", {},
    el("th", { scope: "row" }, name),
    el("td", {}, String(k.calls)), el("td", {}, money(k.spend)), el("td", {}, money(k.revenue)),
    el("td", {}, times(k.roas)), el("td", {}, money(k.cpa)), el("td", {}, ratio(k.answer_rate)),
    el("td", {}, ratio(k.close_rate)), el("td", {}, secs(k.speed_to_answer_s)),
    el("td", {}, secs(k.handle_time_s)), el("td", {}, ratio(k.transfer_rate)),
    el("td", {}, ratio(k.qa_coverage)), el("td", {}, k.qa_average === null ? "–" : k.qa_average.toFixed(0)));
}

function table(report) {
  const body = $("table").tBodies[0];
  clear(body);
  for (const g of report.groups) body.append(row(g, g.key ?? "(none)"));
  const foot = $("table").tFoot;
  clear(foot);
  foot.append(row(report.totals, "Total"));
  const name = $("group").selectedOptions[0].textContent;
  $("group-name").textContent = name.toLowerCase();
  $("key-head").textContent = name;
}

function svgBars(trend) {
  const box = $("trend");
  clear(box);
  const w = 900, h = 200, max = Math.max(1, ...trend.map((d) => d.calls));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + 20}`);
  svg.setAttribute("class", "bars");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Calls per day");
  const step = w / Math.max(1, trend.length);
  trend.forEach((d, i) => {
    const r = document.createElementNS(ns, "rect");
    const bh = (d.calls / max) * h;
    r.setAttribute("x", String(i * step + 1));
    r.setAttribute("y", String(h - bh));
    r.setAttribute("width", String(Math.max(1, step - 2)));
    r.setAttribute("height", String(bh));
    const t = document.createElementNS(ns, "title");
    t.textContent = `${d.day}: ${d.calls} calls, ${d.conversions} conversions`;
    r.append(t);
    svg.append(r);
  });
  box.append(svg);
}

async function trendChart(trend) {
  $("trend-note").textContent = trend.length ? "" : "No calls or spend in this period.";
  const uPlot = await loadCharts();
  if (!uPlot) {
    svgBars(trend);
    return;
  }
  const xs = trend.map((d) => Date.parse(`${d.day}T12:00:00Z`) / 1000);
  const data = [xs, trend.map((d) => d.calls), trend.map((d) => d.conversions), trend.map((d) => d.revenue), trend.map((d) => d.spend)];
  if (chart) chart.destroy();
  clear($("trend"));
  chart = new uPlot({
    width: Math.min(1150, $("trend").clientWidth || 900),
    height: 220,
    series: [{}, { label: "Calls", stroke: "#0b57a4" }, { label: "Conversions", stroke: "#146c2e" },
      { label: "Revenue", stroke: "#8a4b00", scale: "money" }, { label: "Spend", stroke: "#a4141d", scale: "money" }],
    axes: [{}, {}, { scale: "money", side: 1 }],
  }, data, $("trend"));
}

async function load() {
  const params = query();
  $("status").textContent = "Loading…";
  $("csv").href = `/v1/kpis?${params}&format=csv`;
  try {
    const report = await getJson(`/v1/kpis?${params}`);
    headline(report.totals);
    table(report);
    await trendChart(report.trend);
    $("status").textContent = `${report.from} to ${report.to}`;
  } catch (err) {
    $("status").textContent = `Could not load: ${err.message}`;
  }
}

const today = new Date();
$("to").value = iso(today);
$("from").value = iso(new Date(today.getTime() - 29 * 86400000));
$("filters").addEventListener("submit", (e) => { e.preventDefault(); load(); });
load();
