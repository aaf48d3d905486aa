// Sign and place a tapgate bet with WebCrypto Ed25519: the same code runs in a browser
// (Chrome 137+, Firefox 129+, Safari 17+) and in Node 18.4+. No dependencies.
//
// Node: node place-bet.mjs http://127.0.0.1:8080
// It prints the new wallet's address, waits for one line on stdin (fund the wallet, then
// press Enter), bets 100 on the most likely open cell, and prints the gateway's answer.

const webcrypto = globalThis.crypto ?? (await import("node:crypto")).webcrypto; // Node 18 has no global
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");

export async function newWallet() {
  const keys = await webcrypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const address = hex(await webcrypto.subtle.exportKey("raw", keys.publicKey));
  return { address, privateKey: keys.privateKey };
}

export async function sign(wallet, text) {
  const signature = await webcrypto.subtle.sign({ name: "Ed25519" }, wallet.privateKey, new TextEncoder().encode(text));
  return hex(signature);
}

// The canonical message of protocol v1: every value exactly as sent in the body.
export function betMessage(bet) {
  return ["tapgate:bet:v1", bet.wallet, bet.market, bet.cell_id, bet.amount, bet.nonce, bet.timestamp, bet.min_multiplier ?? ""].join("\n");
}

export async function placeBet(baseUrl, wallet, market, cellId, amount, minMultiplier) {
  const bet = {
    wallet: wallet.address,
    market,
    cell_id: cellId,
    amount, // an integer in minor units
    nonce: webcrypto.randomUUID(), // reuse the same body to retry: the gateway answers it idempotently
    timestamp: Date.now(),
  };
  if (minMultiplier !== undefined) bet.min_multiplier = minMultiplier; // e.g. "1.50"
  bet.signature = await sign(wallet, betMessage(bet));
  const response = await fetch(`${baseUrl}/api/bets`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(bet),
  });
  return { status: response.status, body: await response.json() };
}

// The stream: public ticks, grids and breaker changes; your own results once subscribed.
export function openStream(baseUrl, wallet, onMessage) {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/api/stream`);
  ws.onmessage = async (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      // the subscribe signs this connection's challenge: it is good on this socket only
      const timestamp = Date.now();
      const text = `tapgate:subscribe:v2\n${message.challenge}\n${wallet.address}\n${timestamp}`;
      const signature = await sign(wallet, text);
      ws.send(JSON.stringify({ op: "subscribe", wallet: wallet.address, timestamp, signature }));
    }
    onMessage(message);
  };
  return ws;
}

async function main() {
  const baseUrl = process.argv[2] ?? "http://127.0.0.1:8080";
  const wallet = await newWallet();
  console.log(JSON.stringify({ wallet: wallet.address }));
  for await (const _ of (await import("node:readline")).createInterface({ input: process.stdin })) break;
  const grid = await (await fetch(`${baseUrl}/api/markets/BTC-USD/grid`)).json();
  // the cheapest multiplier is the likeliest win; the latest column stays open longest
  const cells = grid.cells.filter((c) => c.col === Math.max(...grid.cells.map((x) => x.col)));
  const cell = cells.reduce((a, b) => (Number(a.multiplier) <= Number(b.multiplier) ? a : b));
  const result = await placeBet(baseUrl, wallet, "BTC-USD", cell.cell_id, 100, "1.01");
  console.log(JSON.stringify(result));
  process.exit(result.status === 202 ? 0 : 1);
}

if (typeof process !== "undefined" && import.meta.url === `file://${process.argv[1]}`) await main();
