// tapgate.mjs: the client module of the tapgate gateway, for any frontend.
// Keys (WebCrypto Ed25519, non-extractable), the canonical messages, bets with retries
// that resend the same signed body, signed reads, and the stream with reconnect,
// resubscribe and gap recovery. ESM, no dependencies: browsers with WebCrypto Ed25519
// (Chrome 137+, Firefox 129+, Safari 17+) and Node 20+ (Node 20 needs
// --experimental-websocket for the stream). Types: JSDoc checked by `tsc --checkJs`
// against openapi.d.ts, which openapi-typescript generates from /openapi.json.
// The wire protocol is docs/API.md and docs/FRONTEND.md; this file follows them.

/** @typedef {import("./openapi").components["schemas"]} Schemas */
/** @typedef {Schemas["Grid"]} Grid */
/** @typedef {Schemas["Cell"]} Cell */
/** @typedef {Schemas["MarketList"]} MarketList */
/** @typedef {Schemas["MarketSummary"]} MarketSummary */
/** @typedef {Schemas["Receipt"]} Receipt */
/** @typedef {Schemas["WalletView"]} WalletView */
/** @typedef {Schemas["BetList"]} BetList */
/** @typedef {Schemas["CreditResult"]} Funding */
/** @typedef {Schemas["Error"]["error"]} ErrorBody */
/** @typedef {Schemas["StreamGridDelta"]} GridDelta */

export const PROTOCOL = 2;
const encoder = new TextEncoder();
const ED25519 = { name: "Ed25519" };
// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): WebCrypto imports seeds this way.
const PKCS8_PREFIX = "302e020100300506032b657004220420";

/** @param {ArrayBuffer | Uint8Array} bytes */
export function toHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** @param {string} text */
function fromHex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * The canonical text of a bet (protocol v1): every value exactly as sent in the body.
 * @param {{wallet: string, market: string, cell_id: string, amount: number, nonce: string,
 *          timestamp: number, min_multiplier?: string}} bet
 */
export function betMessage(bet) {
  return [
    "tapgate:bet:v1", bet.wallet, bet.market, bet.cell_id, bet.amount, bet.nonce,
    bet.timestamp, bet.min_multiplier ?? "",
  ].join("\n");
}

/**
 * What a signed read signs: the method, the raw path with its query, the timestamp.
 * @param {string} method @param {string} target @param {number} timestamp
 */
export function readMessage(method, target, timestamp) {
  return `tapgate:read:v1\n${method}\n${target}\n${timestamp}`;
}

/**
 * What a stream subscribe signs: this connection's challenge (from hello), wallet, time.
 * @param {string} challenge @param {string} wallet @param {number} timestamp
 */
export function subscribeMessage(challenge, wallet, timestamp) {
  return `tapgate:subscribe:v2\n${challenge}\n${wallet}\n${timestamp}`;
}

/** A player's key: the private half stays inside WebCrypto (non-extractable). */
export class Wallet {
  /** @param {CryptoKey} privateKey @param {string} address 64 hex digits (the public key) */
  constructor(privateKey, address) {
    this.privateKey = privateKey;
    this.address = address;
  }

  /** A new key; the private half can sign but never be read back. */
  static async generate() {
    const pair = /** @type {CryptoKeyPair} */ (
      await crypto.subtle.generateKey(ED25519, false, ["sign", "verify"])
    );
    const address = toHex(await crypto.subtle.exportKey("raw", pair.publicKey));
    return new Wallet(pair.privateKey, address);
  }

  /**
   * A development key from the CLI (`tapgate keygen`): the text of its key file, or the
   * 64-hex-digit seed. Imported non-extractable; the address is checked against the
   * file's comment when it has one.
   * @param {string} text
   */
  static async fromKeyFile(text) {
    const seed = /ed25519-seed:([0-9a-f]{64})/.exec(text)?.[1] ?? /^\s*([0-9a-f]{64})\s*$/.exec(text)?.[1];
    if (!seed) throw new Error("not a tapgate key file: expected a line 'ed25519-seed:<64 hex digits>'");
    const der = fromHex(PKCS8_PREFIX + seed);
    // extractable only long enough to derive the public key, then re-imported sealed
    const open = await crypto.subtle.importKey("pkcs8", der, ED25519, true, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", open);
    const address = toHex(base64UrlDecode(/** @type {string} */ (jwk.x)));
    const privateKey = await crypto.subtle.importKey("pkcs8", der, ED25519, false, ["sign"]);
    const named = /address(?: is)?\s*[:=]?\s*([0-9a-f]{64})/.exec(text)?.[1];
    if (named && named !== address) throw new Error("the key file's address does not match its seed");
    return new Wallet(privateKey, address);
  }

  /** @param {string} text @returns {Promise<string>} the signature, 128 hex digits */
  async sign(text) {
    return toHex(await crypto.subtle.sign(ED25519, this.privateKey, encoder.encode(text)));
  }
}

/** @param {string} text */
function base64UrlDecode(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

const DB = "tapgate";
const STORE = "wallets";

/** @returns {Promise<IDBDatabase>} */
function openKeys() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * Keep a wallet in IndexedDB (browsers): the CryptoKey is stored as itself, still
 * non-extractable; no key material ever becomes a string.
 * @param {Wallet} wallet @param {string} [name]
 */
export async function saveWallet(wallet, name = "default") {
  const db = await openKeys();
  await new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).put({ privateKey: wallet.privateKey, address: wallet.address }, name);
    tx.oncomplete = () => resolve(undefined);
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

/** @param {string} [name] @returns {Promise<Wallet | null>} */
export async function loadWallet(name = "default") {
  const db = await openKeys();
  const row = await new Promise((resolve, reject) => {
    const request = db.transaction(STORE).objectStore(STORE).get(name);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  db.close();
  return row ? new Wallet(row.privateKey, row.address) : null;
}

/** A refusal from the gateway, with its documented code (docs/API.md). */
export class ApiError extends Error {
  /** @param {number} status @param {Partial<ErrorBody>} body @param {number | null} retryAfter */
  constructor(status, body, retryAfter) {
    super(body.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body.code ?? "unknown";
    this.field = body.field ?? null;
    this.requestId = body.request_id ?? null;
    /** seconds to wait before trying again (429 and 503), or null */
    this.retryAfter = retryAfter;
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Codes worth resending the same signed body for: the gateway was busy, not the bet. */
const RETRYABLE = new Set(["overloaded"]);

/** The HTTP API. `baseUrl` "" means this page's origin. */
export class Client {
  /** @param {string} [baseUrl] @param {{fetch?: typeof fetch}} [options] */
  constructor(baseUrl = "", options = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** server clock minus this clock, from the last server_time_ms seen */
    this.clockOffsetMs = 0;
  }

  /** The time to put in signed messages: this clock corrected by the server's. */
  now() {
    return Date.now() + this.clockOffsetMs;
  }

  /**
   * @param {string} path @param {RequestInit} [init]
   * @returns {Promise<{status: number, body: any, headers: Headers}>}
   */
  async request(path, init = {}) {
    const response = await this.fetch(this.baseUrl + path, init);
    const body = await response.json();
    if (!response.ok) {
      const retry = response.headers.get("retry-after");
      throw new ApiError(response.status, body.error ?? {}, retry === null ? null : Number(retry));
    }
    return { status: response.status, body, headers: response.headers };
  }

  /** @returns {Promise<MarketList>} every market, and the server clock */
  async markets() {
    const sent = Date.now();
    const { body } = await this.request("/api/markets");
    this.clockOffsetMs = Math.round(body.server_time_ms - (sent + Date.now()) / 2);
    return body;
  }

  /** @param {string} market @returns {Promise<Grid & {server_time_ms: number}>} */
  async grid(market) {
    return (await this.request(`/api/markets/${encodeURIComponent(market)}/grid`)).body;
  }

  /**
   * A signed GET: the wallet proves its key for its own reads.
   * @param {Wallet} wallet @param {string} target the path with its query
   */
  async signedGet(wallet, target) {
    const timestamp = this.now();
    const signature = await wallet.sign(readMessage("GET", target, timestamp));
    const headers = {
      "x-tapgate-wallet": wallet.address,
      "x-tapgate-timestamp": String(timestamp),
      "x-tapgate-signature": signature,
    };
    return (await this.request(target, { headers })).body;
  }

  /** @param {Wallet} wallet @returns {Promise<WalletView>} balance and reserved stake */
  async wallet(wallet) {
    return this.signedGet(wallet, `/api/wallets/${wallet.address}`);
  }

  /** @param {Wallet} wallet @param {number} [limit] @returns {Promise<BetList>} newest first */
  async bets(wallet, limit = 20) {
    return this.signedGet(wallet, `/api/wallets/${wallet.address}/bets?limit=${limit}`);
  }

  /**
   * Sign and place a bet. A network failure or a busy gateway (503 overloaded) resends
   * the same signed body, which the gateway answers idempotently (never a double debit),
   * until `attempts` are spent or the receive window would expire. Other refusals throw
   * ApiError at once.
   * @param {Wallet} wallet
   * @param {{market: string, cellId: string, amount: number, minMultiplier?: string}} bet
   * @param {{attempts?: number, windowMs?: number}} [options]
   * @returns {Promise<{receipt: Receipt, replayed: boolean, body: string}>}
   */
  async placeBet(wallet, bet, options = {}) {
    const attempts = options.attempts ?? 4;
    const windowMs = options.windowMs ?? 5000;
    const fields = {
      wallet: wallet.address,
      market: bet.market,
      cell_id: bet.cellId,
      amount: bet.amount,
      nonce: crypto.randomUUID(),
      timestamp: this.now(),
      ...(bet.minMultiplier === undefined ? {} : { min_multiplier: bet.minMultiplier }),
    };
    const body = JSON.stringify({ ...fields, signature: await wallet.sign(betMessage(fields)) });
    const init = { method: "POST", headers: { "content-type": "application/json" }, body };
    for (let attempt = 1; ; attempt++) {
      try {
        const { body: receipt, headers } = await this.request("/api/bets", init);
        return { receipt, replayed: headers.get("idempotent-replayed") === "true", body };
      } catch (error) {
        const retryable = !(error instanceof ApiError) || RETRYABLE.has(error.code);
        const wait = error instanceof ApiError && error.retryAfter ? error.retryAfter * 1000 : 100 * 2 ** attempt;
        if (!retryable || attempt >= attempts || this.now() + wait > fields.timestamp + windowMs) throw error;
        await sleep(wait);
      }
    }
  }

  /**
   * Development only: fund a wallet from the page (404 unless the gateway runs with
   * TAPGATE_DEV_FUNDING=1 on loopback).
   * @param {Wallet} wallet @param {number} amount @returns {Promise<Funding>}
   */
  async devFund(wallet, amount) {
    const body = JSON.stringify({ wallet: wallet.address, amount });
    const init = { method: "POST", headers: { "content-type": "application/json" }, body };
    return (await this.request("/dev/fund", init)).body;
  }
}

/**
 * The grid after a `grid_delta` (docs/FRONTEND.md): a new object, cells ordered by
 * column then row as the gateway sends them.
 * @param {Grid} grid @param {GridDelta} delta @returns {Grid}
 */
export function applyGridDelta(grid, delta) {
  const gone = new Set(delta.removed);
  const cells = grid.cells
    .filter((c) => !gone.has(c.cell_id))
    .map((c) => (c.cell_id in delta.changed ? { ...c, multiplier: delta.changed[c.cell_id] } : c))
    .concat(delta.added)
    .sort((a, b) => a.col - b.col || a.row - b.row);
  return { ...grid, price: delta.price, price_ts: delta.price_ts, breaker: delta.breaker, cells };
}

/**
 * The live stream: watches markets, follows one wallet, and keeps each watched market's
 * grid current. Reconnects after a drop (backoff 0.5 s doubling to 10 s, with jitter),
 * then watches and subscribes again; a gap in a market's stream_seq asks for a new
 * snapshot. Events (a CustomEvent each, the message in `detail`): "hello", "snapshot",
 * "tick", "grid" (the grid after a snapshot or delta), "breaker", "bet_result",
 * "subscribed", "error", and "state" ({connected: boolean}).
 */
export class Stream extends EventTarget {
  /**
   * @param {string} baseUrl "" for this page's origin
   * @param {{markets: string[], wallet?: Wallet | null, WebSocket?: typeof WebSocket, now?: () => number}} options
   */
  constructor(baseUrl, options) {
    super();
    const origin = baseUrl || globalThis.location.origin;
    this.url = origin.replace(/^http/, "ws").replace(/\/$/, "") + "/api/stream";
    this.markets = options.markets;
    this.wallet = options.wallet ?? null;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.now = options.now ?? Date.now;
    /** @type {Map<string, Grid>} */
    this.grids = new Map();
    /** @type {Map<string, number>} */
    this.seq = new Map();
    this.connected = false;
    this.closed = false;
    this.backoffMs = 500;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
  }

  start() {
    this.closed = false;
    this.connect();
    return this;
  }

  close() {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.ws?.close();
  }

  /** Follow another wallet's results from now on (and after every reconnect). @param {Wallet} wallet */
  follow(wallet) {
    this.wallet = wallet;
    if (this.connected && this.challenge) this.subscribe(this.challenge);
  }

  /**
   * Call `handler` with each message of `type` (the event's detail); returns the way to stop.
   * @param {string} type @param {(detail: any) => void} handler
   */
  on(type, handler) {
    const listener = (/** @type {Event} */ event) => handler(/** @type {CustomEvent} */ (event).detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /** @param {string} type @param {unknown} detail */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    const ws = new this.WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = (event) => this.receive(JSON.parse(String(event.data)));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.connected = false;
      this.seq.clear();
      this.emit("state", { connected: false });
      if (this.closed) return;
      const wait = this.backoffMs * (0.5 + Math.random() / 2);
      this.backoffMs = Math.min(this.backoffMs * 2, 10_000);
      this.timer = setTimeout(() => this.connect(), wait);
    };
  }

  /** @param {string} challenge */
  async subscribe(challenge) {
    const wallet = this.wallet;
    if (!wallet || !this.ws) return;
    const timestamp = this.now();
    const signature = await wallet.sign(subscribeMessage(challenge, wallet.address, timestamp));
    this.ws.send(JSON.stringify({ op: "subscribe", wallet: wallet.address, timestamp, signature }));
  }

  /** @param {string[]} markets */
  watch(markets) {
    this.ws?.send(JSON.stringify({ op: "watch", markets }));
  }

  /** @param {any} message */
  receive(message) {
    const market = message.market;
    if ("stream_seq" in message && message.type !== "snapshot") {
      const last = this.seq.get(market);
      if (last === undefined) return; // before this market's snapshot: it already holds this
      if (message.stream_seq !== last + 1) {
        this.seq.delete(market); // a gap: ignore until the new snapshot
        this.watch([market]);
        return;
      }
      this.seq.set(market, message.stream_seq);
    }
    switch (message.type) {
      case "hello":
        this.connected = true;
        this.backoffMs = 500;
        this.challenge = message.challenge;
        this.emit("state", { connected: true });
        this.emit("hello", message);
        this.watch(this.markets);
        this.subscribe(message.challenge);
        return;
      case "snapshot":
        this.seq.set(market, message.stream_seq);
        this.grids.set(market, message.grid);
        this.emit("snapshot", message);
        this.emit("grid", this.grids.get(market));
        return;
      case "grid_delta": {
        const grid = this.grids.get(market);
        if (!grid) return;
        this.grids.set(market, applyGridDelta(grid, message));
        this.emit("grid", this.grids.get(market));
        return;
      }
      default:
        this.emit(message.type, message);
    }
  }
}
