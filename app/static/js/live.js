// One WebSocket for the whole page: subscribed to every task the user can see
// ("*"), reconnecting with exponential backoff and jitter when it drops.

import { credential } from "./api.js";

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
const PING_EVERY_MS = 25_000;

function randomId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class LiveUpdates {
  /**
   * `onUpdate(message)` gets every task_update; `onState(state, detail)` gets
   * "connecting" | "live" | "reconnecting" (detail: delay in ms) | "offline";
   * `onReconnected()` runs when a connection opens after a drop (updates may
   * have been missed); `onRejected()` when the server refused the credential.
   */
  constructor({ onUpdate, onState, onReconnected, onRejected }) {
    this.onUpdate = onUpdate;
    this.onState = onState;
    this.onReconnected = onReconnected;
    this.onRejected = onRejected;
    this.clientId = randomId();
    this.socket = null;
    this.failures = 0;
    this.opened = false;
    this.stopped = true;
    this.retryTimer = null;
    this.pingTimer = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.opened = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, "signed out");
    this.onState("offline");
  }

  connect() {
    if (this.stopped) return;
    const token = credential.token();
    if (!token) {
      this.onRejected(); // the credential expired: the app signs out
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/api/v1/ws/tasks/${this.clientId}?token=${encodeURIComponent(token)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    this.onState("connecting");
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      socket.send(JSON.stringify({ type: "subscribe", task_id: "*" }));
      this.pingTimer = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, PING_EVERY_MS);
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "subscribed") {
        this.failures = 0;
        this.onState("live");
        if (this.opened) this.onReconnected();
        this.opened = true;
      } else if (message.type === "task_update") {
        this.onUpdate(message);
      }
    });
    socket.addEventListener("close", (event) => {
      clearInterval(this.pingTimer);
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      if (event.code === 1008) this.onRejected();
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.failures);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.failures += 1;
    this.onState("reconnecting", delay);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }
}
