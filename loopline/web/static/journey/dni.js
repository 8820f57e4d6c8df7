/* Loopline dynamic number insertion. Embed once per page:
 *   <script>window.looplineConsent = true;</script>   (set by the site's consent banner)
 *   <script src="https://YOUR-LOOPLINE/dni.js" async></script>
 * Without consent it sends nothing and the page keeps its own number; the site may grant it
 * later with window.loopline.consent(). Elements marked data-loopline-swap and tel: links get
 * the session's tracking number, in the page's own formatting. Click ids, UTM parameters and
 * the landing page travel in the landing URL; marked events (data-loopline-event) and the
 * first focus in each form are sent as events. Dependency-free, ES2017. */
(function () {
  "use strict";
  if (window.loopline && window.loopline.started) return;
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : location.origin;
  var ENDPOINT = base + "/v1/touches";
  var SESSION_IDLE_MS = 30 * 60 * 1000;
  var FLUSH_MS = 5000;
  var queue = [];
  var started = false;
  var heartbeatMs = 60000;

  function store(kind) {
    try { return window[kind]; } catch (e) { return null; }
  }
  var local = store("localStorage");
  var session = store("sessionStorage");
  function get(s, k) { try { return s ? s.getItem(k) : null; } catch (e) { return null; } }
  function put(s, k, v) { try { if (s) s.setItem(k, v); } catch (e) { /* private mode */ } }

  function newId() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name.replace(/[.$?*|{}()[\]\\/+^]/g, "\\$&") + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }

  function ids() {
    var vid = get(local, "ll_vid") || cookie("ll_vid");
    if (!vid) vid = newId();
    put(local, "ll_vid", vid);
    document.cookie = "ll_vid=" + vid + "; path=/; max-age=" + 60 * 60 * 24 * 365 + "; samesite=lax";
    var now = Date.now();
    var last = parseInt(get(local, "ll_last") || "0", 10);
    var sid = get(local, "ll_sid");
    if (!sid || now - last > SESSION_IDLE_MS) {
      sid = newId();
      put(local, "ll_sid", sid);
      put(session, "ll_landing", location.href);
      put(session, "ll_referrer", document.referrer || "");
      put(session, "ll_num", "");
    }
    if (!get(session, "ll_landing")) {
      put(session, "ll_landing", location.href);
      put(session, "ll_referrer", document.referrer || "");
    }
    put(local, "ll_last", String(now));
    return { visitor: vid, session: sid };
  }

  function batch() {
    var id = ids();
    var cookies = {};
    ["_fbp", "_fbc", "_ga"].forEach(function (n) { var v = cookie(n); if (v) cookies[n] = v.slice(0, 256); });
    var tz = null;
    try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch (e) { /* old browser */ }
    var body = {
      visitor_id: id.visitor,
      session_id: id.session,
      landing: (get(session, "ll_landing") || location.href).slice(0, 2048),
      referrer: (get(session, "ll_referrer") || "").slice(0, 2048) || null,
      cookies: cookies,
      tz: tz,
      touches: queue.splice(0, 50)
    };
    return body;
  }

  function reformat(text, number) {
    var digits = number.replace(/\D/g, "");
    var count = (text.match(/\d/g) || []).length;
    if (count === 0 || count > digits.length) return number;
    var src = digits.slice(-count);
    var i = 0;
    return text.replace(/\d/g, function () { return src.charAt(i++); });
  }

  function swap(number) {
    if (!number) return;
    var marked = document.querySelectorAll("[data-loopline-swap]");
    Array.prototype.forEach.call(marked, function (el) {
      if (el.dataset.llOriginal === undefined) el.dataset.llOriginal = el.textContent;
      el.textContent = reformat(el.dataset.llOriginal, number);
    });
    var links = document.querySelectorAll('a[href^="tel:"]');
    Array.prototype.forEach.call(links, function (a) {
      if (a.dataset.llOriginalHref === undefined) a.dataset.llOriginalHref = a.getAttribute("href");
      a.setAttribute("href", "tel:" + number);
      if (!a.hasAttribute("data-loopline-swap") && /\d/.test(a.textContent) && a.children.length === 0) {
        if (a.dataset.llOriginal === undefined) a.dataset.llOriginal = a.textContent;
        a.textContent = reformat(a.dataset.llOriginal, number);
      }
    });
    document.documentElement.setAttribute("data-loopline-number", number);
  }

  function answer(res) {
    if (!res || !res.number) return;
    put(session, "ll_num", res.number);
    if (res.heartbeat_s) heartbeatMs = res.heartbeat_s * 1000;
    swap(res.number);
  }

  function send(beacon) {
    if (!started || !queue.length) return;
    var body = JSON.stringify(batch());
    if (beacon && navigator.sendBeacon) {
      // text/plain keeps a beacon a "simple" request: no CORS preflight.
      if (navigator.sendBeacon(ENDPOINT, new Blob([body], { type: "text/plain" }))) return;
    }
    fetch(ENDPOINT, {
      method: "POST", body: body, keepalive: true, credentials: "omit",
      headers: { "Content-Type": "text/plain" }
    }).then(function (r) { return r.ok ? r.json() : null; }).then(answer, function () { /* offline */ });
  }

  function touch(kind, extra) {
    if (!started) return;
    var t = { kind: kind };
    for (var k in extra) if (Object.prototype.hasOwnProperty.call(extra, k)) t[k] = extra[k];
    queue.push(t);
  }

  function start() {
    if (started) return;
    started = true;
    var cached = get(session, "ll_num");
    if (cached) swap(cached);
    touch("pageview", { url: location.href.slice(0, 2048), title: (document.title || "").slice(0, 300) });
    send(false);
    setInterval(function () { send(true); }, FLUSH_MS);
    setInterval(function () {
      if (document.visibilityState === "visible") { touch("heartbeat", {}); send(false); }
    }, heartbeatMs);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") send(true);
      else { touch("heartbeat", {}); send(false); }
    });
    window.addEventListener("pagehide", function () { send(true); });
    document.addEventListener("click", function (ev) {
      var el = ev.target && ev.target.closest ? ev.target.closest("[data-loopline-event]") : null;
      if (el) { touch("event", { event: el.getAttribute("data-loopline-event").slice(0, 64) }); send(false); }
    }, true);
    var seenForms = [];
    document.addEventListener("focusin", function (ev) {
      var form = ev.target && ev.target.form;
      if (form && seenForms.indexOf(form) < 0) {
        seenForms.push(form);
        touch("form_start", { event: "form_start" });
        send(false);
      }
    }, true);
  }

  function consented() {
    return window.looplineConsent === true ||
      document.documentElement.getAttribute("data-loopline-consent") === "granted";
  }

  window.loopline = {
    started: true,
    consent: function () { window.looplineConsent = true; start(); },
    flush: function () { send(false); },
    reformat: reformat
  };
  if (consented()) start();
})();
