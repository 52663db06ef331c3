// JSON-RPC 2.0 over the daemon's WebSocket, like any other client: authenticate first, then call methods and
// receive notifications. Reconnects on its own (with backoff) and authenticates again with the same credential,
// so the page survives a daemon restart.
//
// Events (on the Rpc object): 'state' {state, retryIn}, 'authenticated' {result, first}, 'auth-failed' {message},
// 'notification' {method, params}.

export class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

const CALL_TIMEOUT_MS = 30000;
const MAX_BACKOFF_MS = 10000;
/** Codes with which a call tells that the session is gone (expired token, revoked key). */
const AUTH_LOST = -32001;

export class Rpc extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.ws = null;
    this.pending = new Map();
    this.nextId = 1;
    this.credential = null;
    this.stopped = true;
    this.attempt = 0;
    this.timer = null;
    this.state = 'offline';
    this.authenticatedOnce = false;
    this.session = null;
  }

  /** Connect and authenticate with `credential` = {token, type}; keeps doing so until stop(). */
  start(credential) {
    this.stop();
    this.credential = credential;
    this.stopped = false;
    this.attempt = 0;
    this.authenticatedOnce = false;
    this.connect();
  }

  /** Close and stop reconnecting (sign-out, or a credential the daemon refused). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.session = null;
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
      this.ws = null;
    }
    this.failPending('Signed out');
    this.setState('offline');
  }

  setState(state, retryIn) {
    this.state = state;
    this.emit('state', { state, retryIn });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    this.setState(this.authenticatedOnce ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.authenticate();
    ws.onmessage = (ev) => this.onMessage(ev.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.session = null;
      this.failPending('Connection lost');
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt++;
    this.setState('reconnecting', Math.round(delay / 1000));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  async authenticate() {
    const { token, type } = this.credential;
    let result;
    try {
      result = await this.send('authenticate', { auth_token: token, auth_type: type || 'auto' });
    } catch (e) {
      return; // the connection dropped meanwhile; onclose reconnects
    }
    if (!result || result.authenticated !== true) {
      const message = result?.error || 'The credential was not accepted';
      this.stop();
      this.emit('auth-failed', { message });
      return;
    }
    this.attempt = 0;
    this.session = result;
    const first = !this.authenticatedOnce;
    this.authenticatedOnce = true;
    this.setState('online');
    this.emit('authenticated', { result, first });
  }

  /** Call `method`; resolves with `result`, rejects with RpcError. */
  call(method, params, timeoutMs = CALL_TIMEOUT_MS) {
    if (!this.session) return Promise.reject(new RpcError(-1, 'Not connected'));
    return this.send(method, params, timeoutMs).catch((e) => {
      if (e.code === AUTH_LOST && /expired|failed/i.test(e.message)) {
        this.stop();
        this.emit('auth-failed', { message: 'Your session has expired. Please sign in again.' });
      }
      throw e;
    });
  }

  send(method, params, timeoutMs = CALL_TIMEOUT_MS) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new RpcError(-1, 'Not connected'));
    const id = this.nextId++;
    const msg = { jsonrpc: '2.0', method, id };
    if (params !== undefined) msg.params = params;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError(-2, `${method} timed out`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify(msg));
    });
  }

  onMessage(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      if (m.id === undefined && typeof m.method === 'string') {
        this.emit('notification', { method: m.method, params: m.params || {} });
        continue;
      }
      const p = this.pending.get(m.id);
      if (!p) continue;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(new RpcError(m.error.code, m.error.message, m.error.data));
      else p.resolve(m.result);
    }
  }

  failPending(why) {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new RpcError(-1, why));
    }
    this.pending.clear();
  }
}
