// A websocket to the node that resumes where it left off.
//
// Every event message carries its bus id; the socket remembers the last one and reconnects
// with ?after=<id>, so the server replays what was missed (nothing twice: older ids are
// ignored here too). The server sends a heartbeat when idle; hearing nothing for
// `staleAfter` heartbeats marks the connection stale and reconnects it.

export function compareIds(a, b) {
  const [a1, a2 = "0"] = a.split("-");
  const [b1, b2 = "0"] = b.split("-");
  const d = Number(a1) - Number(b1);
  return d !== 0 ? d : Number(a2) - Number(b2);
}

export class LiveSocket {
  constructor(path, { onEvent, onStatus, params = {}, staleAfter = 2.5 } = {}) {
    this.path = path;
    this.params = params;
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.staleAfter = staleAfter;
    this.lastId = null;
    this.heartbeatS = 10;
    this.ws = null;
    this.backoffMs = 500;
    this.holdUntil = 0;
    this.lastHeard = performance.now();
    this.stats = { messages: 0, events: 0, reconnects: 0, skipped: 0 };
    this.closedByUs = false;
    this.status = "connecting";
    this._watch = setInterval(() => this._checkStale(), 1000);
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams(this.params);
    if (this.lastId) query.set("after", this.lastId);
    const qs = query.toString();
    return `${proto}//${location.host}${this.path}${qs ? "?" + qs : ""}`;
  }

  connect() {
    const wait = this.holdUntil - performance.now();
    if (wait > 0) {
      setTimeout(() => this.connect(), wait);
      return;
    }
    this._setStatus(this.stats.reconnects ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.backoffMs = 500;
      this.lastHeard = performance.now();
    };
    ws.onmessage = (msg) => {
      this.lastHeard = performance.now();
      this.stats.messages += 1;
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch {
        return;
      }
      if (data.type === "batch") {
        for (const ev of data.events) this._deliver(ev);
      } else {
        this._deliver(data);
      }
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closedByUs) {
        this._setStatus("offline");
        return;
      }
      // 4401/4403: signed out or not allowed; reconnecting will not help.
      if (ev.code === 4401 || ev.code === 4403) {
        this._setStatus("offline");
        this.onEvent({ type: "closed", code: ev.code, reason: ev.reason });
        return;
      }
      this.stats.reconnects += 1;
      this._setStatus("reconnecting");
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, 5000);
      setTimeout(() => this.connect(), delay);
    };
  }

  _deliver(data) {
    if (data.type === "hello") {
      if (data.heartbeat_s) this.heartbeatS = data.heartbeat_s;
      this._setStatus("live");
    }
    if (data.id) {
      if (this.lastId && compareIds(data.id, this.lastId) <= 0) {
        this.stats.skipped += 1;
        return;
      }
      this.lastId = data.id;
      this.stats.events += 1;
    }
    this.onEvent(data);
  }

  _checkStale() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const silentS = (performance.now() - this.lastHeard) / 1000;
    if (silentS > this.heartbeatS * this.staleAfter) {
      this._setStatus("stale");
      this.ws.close(4000, "stale");
    }
  }

  _setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.onStatus(status);
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  // Tests and the "reconnect" button: drop the connection, reconnect after `holdMs`.
  drop(holdMs = 0) {
    this.holdUntil = performance.now() + holdMs;
    if (this.ws) this.ws.close(4000, "dropped");
  }

  close() {
    this.closedByUs = true;
    clearInterval(this._watch);
    if (this.ws) this.ws.close(1000, "bye");
  }
}
