// Small helpers shared by the pages: DOM building, times, the chart library.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}

export function since(iso, now = Date.now()) {
  if (!iso) return "";
  return duration((now - Date.parse(iso)) / 1000);
}

export function percent(x) {
  return `${Math.round((x || 0) * 100)}%`;
}

export function label(text) {
  return String(text || "").replaceAll("_", " ").replaceAll("-", " ");
}

// A caller's number with only its last four digits: enough to tell callers apart.
export function maskNumber(number) {
  if (!number) return "unknown caller";
  const digits = number.replace(/\D/g, "");
  return `••• ${digits.slice(-4)}`;
}

export async function getJson(path) {
  const resp = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (resp.status === 401) {
    location.href = `/signin?next=${encodeURIComponent(location.pathname)}`;
    throw new Error("signed out");
  }
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}

let uplotPromise = null;

// uPlot, served from this node (installed from npm by `make install`); null when missing.
export function loadCharts() {
  if (!uplotPromise) {
    uplotPromise = import("/assets/vendor/uplot/uPlot.esm.js")
      .then((mod) => {
        const link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = "/assets/vendor/uplot/uPlot.min.css";
        document.head.append(link);
        return mod.default;
      })
      .catch(() => null);
  }
  return uplotPromise;
}

// Run `fn` at most once per animation frame however often it is asked for.
export function frameBatcher(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

// Key handling that leaves typing alone: shortcuts fire only outside form fields.
export function onShortcut(map) {
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const target = ev.target;
    if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) {
      if (ev.key !== "Escape") return;
    }
    const handler = map[ev.key];
    if (handler) {
      ev.preventDefault();
      handler(ev);
    }
  });
}
