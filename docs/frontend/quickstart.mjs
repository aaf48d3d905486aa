// From nothing to a settled bet with the client module, against `make run`.
// In a page: import from "/static/tapgate.mjs" (served by the gateway, types beside it in
// /static/openapi.d.ts); under Node 20: node --experimental-websocket.
import { Client, Stream, Wallet } from "../../gateway/static/tapgate.mjs";

export async function quickstart(baseUrl = "http://127.0.0.1:8080") {
  const client = new Client(baseUrl);
  const wallet = await Wallet.generate(); // the private key never leaves WebCrypto
  await client.devFund(wallet, 1000); // development only: make run switches it on
  const { markets } = await client.markets(); // also learns the server's clock
  const market = markets[0].market;
  const stream = new Stream(baseUrl, { markets: [market], wallet }).start();
  const result = new Promise((resolve) => stream.on("bet_result", resolve));

  const grid = await client.grid(market);
  const soonest = Math.min(...grid.cells.map((c) => c.col));
  const price = grid.price ?? 0;
  const cell = grid.cells.find((c) => c.col === soonest && c.low <= price && price < c.high) ?? grid.cells[0];
  const { receipt } = await client.placeBet(wallet, {
    market, cellId: cell.cell_id, amount: 100, minMultiplier: cell.multiplier,
  }); // 202: durable; a network error retries the same signed body (never a double debit)

  const settled = await result; // won, lost or void, with the new balance
  stream.close();
  return { receipt, settled };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await quickstart(process.argv[2]));
