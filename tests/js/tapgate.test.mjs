// gateway/static/tapgate.mjs under Node's test runner, against the live gateway that
// tests/browser/test_js_module.py starts (TAPGATE_URL, development funding on).
// TAPGATE_VECTORS holds what the Python side computed: the canonical messages for
// fixed values and a CLI key file with its address.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ApiError, Client, Stream, Wallet, applyGridDelta, betMessage, readMessage, subscribeMessage,
} from "../../gateway/static/tapgate.mjs";

const URL = process.env.TAPGATE_URL ?? "";
const vectors = JSON.parse(process.env.TAPGATE_VECTORS ?? "{}");

/** @param {Wallet} wallet @param {number} amount */
async function funded(wallet, amount) {
  await new Client(URL).devFund(wallet, amount);
  return wallet;
}

/** @param {Client} client @param {string} market */
async function openCell(client, market) {
  const grid = await client.grid(market);
  const first = Math.min(...grid.cells.map((c) => c.col));
  const later = grid.cells.filter((c) => c.col === first + 3); // open for the whole test
  return later[Math.floor(later.length / 2)];
}

test("the canonical messages are byte for byte the gateway's", () => {
  const bet = vectors.bet.fields;
  assert.equal(betMessage(bet), vectors.bet.message);
  assert.equal(betMessage({ ...bet, min_multiplier: undefined }), vectors.bet.message_without_min);
  assert.equal(readMessage("GET", "/api/wallets/ab?limit=5", 42), vectors.read);
  assert.equal(subscribeMessage("c".repeat(32), bet.wallet, 42), vectors.subscribe);
});

test("a CLI key file imports with its address, sealed, and a mismatched one is refused", async () => {
  const wallet = await Wallet.fromKeyFile(vectors.key_file);
  assert.equal(wallet.address, vectors.key_address);
  assert.equal(wallet.privateKey.extractable, false);
  await assert.rejects(Wallet.fromKeyFile("not a key"), /not a tapgate key file/);
  const lying = vectors.key_file.replace(vectors.key_address, "0".repeat(64));
  await assert.rejects(Wallet.fromKeyFile(lying), /does not match/);
});

test("generated keys cannot be read back", async () => {
  const wallet = await Wallet.generate();
  assert.match(wallet.address, /^[0-9a-f]{64}$/);
  await assert.rejects(crypto.subtle.exportKey("pkcs8", wallet.privateKey));
});

test("an imported CLI key places a bet the gateway verifies", async () => {
  const client = new Client(URL);
  await client.markets();
  const wallet = await funded(await Wallet.fromKeyFile(vectors.key_file), 1000);
  const cell = await openCell(client, "BTC-USD");
  const { receipt } = await client.placeBet(wallet, { market: "BTC-USD", cellId: cell.cell_id, amount: 100 });
  assert.equal(receipt.wallet, vectors.key_address);
  assert.equal(receipt.status, "accepted");
});

test("a lost answer is retried with the same signed body and the gateway replays its receipt", async () => {
  let calls = 0;
  /** @type {typeof fetch} */
  const flaky = async (input, init) => {
    calls += 1;
    const response = await fetch(input, init);
    if (calls === 1) {
      await response.arrayBuffer();
      throw new TypeError("fetch failed"); // the bet arrived; its answer did not
    }
    return response;
  };
  const client = new Client(URL, { fetch: flaky });
  await new Client(URL).markets().then((m) => (client.clockOffsetMs = m.server_time_ms - Date.now()));
  const wallet = await funded(await Wallet.generate(), 1000);
  const cell = await openCell(new Client(URL), "BTC-USD");
  calls = 0;
  const placed = await client.placeBet(wallet, { market: "BTC-USD", cellId: cell.cell_id, amount: 100 });
  assert.equal(calls, 2);
  assert.equal(placed.replayed, true);
  const view = await new Client(URL).wallet(wallet);
  assert.equal(view.balance, 900); // debited once
  const bets = await new Client(URL).bets(wallet);
  assert.deepEqual(bets.bets.map((b) => b.bet_id), [placed.receipt.bet_id]);
});

test("a refusal is an ApiError with its code, and is not retried", async () => {
  let calls = 0;
  const client = new Client(URL, { fetch: (input, init) => ((calls += 1), fetch(input, init)) });
  await client.markets();
  const wallet = await Wallet.generate(); // no funds
  const cell = await openCell(client, "BTC-USD");
  calls = 0;
  await assert.rejects(
    client.placeBet(wallet, { market: "BTC-USD", cellId: cell.cell_id, amount: 100 }),
    (error) => error instanceof ApiError && error.status === 409 && error.code === "insufficient_funds",
  );
  assert.equal(calls, 1);
  await assert.rejects(client.devFund(wallet, 10 ** 9), (e) => e instanceof ApiError && e.field === "amount");
});

test("applyGridDelta removes, changes and adds cells in the gateway's order", () => {
  /** @param {number} row @param {number} col @param {string} multiplier */
  const cell = (row, col, multiplier) => ({
    cell_id: `cell-${row}-${col}`, row, col, low: row * 20, high: row * 20 + 20,
    start_ms: col * 5000, end_ms: col * 5000 + 5000, multiplier,
  });
  const grid = { market: "M", price: 100, price_ts: 1, breaker: /** @type {const} */ ("normal"),
    cells: [cell(1, 5, "2.00"), cell(2, 5, "3.00")] };
  const next = applyGridDelta(grid, {
    type: "grid_delta", market: "M", stream_seq: 2, price: 101, price_ts: 2, breaker: "warning",
    added: [cell(1, 6, "4.00")], changed: { "cell-2-5": "3.10" }, removed: ["cell-1-5"],
  });
  assert.deepEqual(next.cells.map((c) => [c.cell_id, c.multiplier]), [["cell-2-5", "3.10"], ["cell-1-6", "4.00"]]);
  assert.equal(next.price, 101);
  assert.equal(next.breaker, "warning");
  assert.equal(grid.cells.length, 2); // the old grid is untouched
});

/** @param {Stream} stream @param {string} type @param {(detail: any) => boolean} [match] */
function next(stream, type, match = () => true) {
  return new Promise((resolve) => {
    /** @param {Event} event */
    const listener = (event) => {
      const { detail } = /** @type {CustomEvent} */ (event);
      if (!match(detail)) return;
      stream.removeEventListener(type, listener);
      resolve(detail);
    };
    stream.addEventListener(type, listener);
  });
}

test("the stream keeps a watched grid current, follows a wallet, and recovers from a drop", async () => {
  const client = new Client(URL);
  await client.markets();
  const wallet = await Wallet.generate();
  const stream = new Stream(URL, { markets: ["ETH-USD"], wallet, now: () => client.now() });
  const subscribed = next(stream, "subscribed");
  const snapshot = next(stream, "snapshot");
  stream.start();
  try {
    assert.equal((await subscribed).wallet, wallet.address);
    const first = /** @type {any} */ (await snapshot);
    assert.equal(first.market, "ETH-USD");
    /** @type {any[]} */
    const grids = [];
    stream.addEventListener("grid", (event) => grids.push(/** @type {CustomEvent} */ (event).detail));
    await next(stream, "grid"); // one delta applied
    const held = stream.grids.get("ETH-USD");
    assert.ok(held && held.cells.length > 0);
    const ordered = [...held.cells].sort((a, b) => a.col - b.col || a.row - b.row);
    assert.deepEqual(held.cells, ordered);
    assert.ok(grids.every((g) => g.market === "ETH-USD")); // only the watched market

    const down = next(stream, "state", (s) => !s.connected);
    const up = next(stream, "state", (s) => s.connected);
    const again = next(stream, "snapshot");
    const resubscribed = next(stream, "subscribed");
    stream.ws?.close(); // the network drops
    await down;
    await up;
    assert.equal(/** @type {any} */ (await again).market, "ETH-USD");
    assert.equal(/** @type {any} */ (await resubscribed).wallet, wallet.address);
  } finally {
    stream.close();
  }
});

test("a gap in a market's stream_seq asks for a new snapshot and skips until it comes", () => {
  /** @type {string[]} */
  const sent = [];
  class FakeSocket {
    /** @param {string} url */
    constructor(url) { this.url = url; }
    /** @param {string} text */
    send(text) { sent.push(text); }
    close() {}
  }
  const stream = new Stream("http://gateway.test", {
    markets: ["BTC-USD"], WebSocket: /** @type {any} */ (FakeSocket),
  });
  stream.start();
  /** @type {string[]} */
  const ticks = [];
  stream.addEventListener("tick", (e) => ticks.push(String(/** @type {CustomEvent} */ (e).detail.stream_seq)));
  const grid = { market: "BTC-USD", price: 1, price_ts: 1, breaker: "normal", cells: [] };
  stream.receive({ type: "hello", challenge: "c".repeat(32) });
  stream.receive({ type: "snapshot", market: "BTC-USD", stream_seq: 5, summary: {}, grid });
  stream.receive({ type: "tick", market: "BTC-USD", stream_seq: 6 });
  stream.receive({ type: "tick", market: "BTC-USD", stream_seq: 8 }); // 7 was lost
  stream.receive({ type: "tick", market: "BTC-USD", stream_seq: 9 }); // ignored until resynced
  stream.receive({ type: "snapshot", market: "BTC-USD", stream_seq: 9, summary: {}, grid });
  stream.receive({ type: "tick", market: "BTC-USD", stream_seq: 10 });
  assert.deepEqual(ticks, ["6", "10"]);
  const watches = sent.map((t) => JSON.parse(t)).filter((m) => m.op === "watch");
  assert.deepEqual(watches, [{ op: "watch", markets: ["BTC-USD"] }, { op: "watch", markets: ["BTC-USD"] }]);
  stream.close();
});

test("the quickstart of docs/FRONTEND.md places a bet and sees it settle", async () => {
  const { quickstart } = await import("../../docs/frontend/quickstart.mjs");
  const { receipt, settled } = await quickstart(URL);
  assert.equal(receipt.status, "accepted");
  assert.equal(settled.bet_id, receipt.bet_id);
  assert.ok(["won", "lost", "void"].includes(settled.status));
});
