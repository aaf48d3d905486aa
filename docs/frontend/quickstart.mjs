// From nothing to a settled bet with the client module, against `make run`.
// In a page: import from "/static/tapgate.mjs" (served by the gateway, types beside it in
// /static/openapi.d.ts); under Node 20: node --experimental-websocket.
import { ApiError, Client, Stream, Wallet } from "../../gateway/static/tapgate.mjs";

export async function quickstart(baseUrl = "http://127.0.0.1:8080") {
  const client = new Client(baseUrl);
  const wallet = await Wallet.generate(); // the private key never leaves WebCrypto
  await client.devFund(wallet, 1000); // development only: make run switches it on
  const { markets } = await client.markets(); // also learns the server's clock
  const market = markets[0].market;
  const stream = new Stream(baseUrl, { markets: [market], wallet }).start();
  try {
    const result = new Promise((resolve) => stream.on("bet_result", resolve));
    const receipt = await betAtThePrice(client, wallet, market);
    const settled = await result; // won, lost or void, with the new balance
    return { receipt, settled };
  } finally {
    stream.close(); // also when the bet is refused: nothing left running
  }
}

/** Bet 100 on the soonest cell at the price. The quote moves with every tick: when it moved
 * below the one shown, or the cell closed, tap again (a new bet on a fresh grid).
 * @param {Client} client @param {Wallet} wallet @param {string} market */
async function betAtThePrice(client, wallet, market) {
  for (let tap = 1; ; tap += 1) {
    const grid = await client.grid(market);
    const soonest = Math.min(...grid.cells.map((c) => c.col));
    const price = grid.price ?? 0;
    const cell = grid.cells.find((c) => c.col === soonest && c.low <= price && price < c.high) ?? grid.cells[0];
    try {
      const { receipt } = await client.placeBet(wallet, {
        market, cellId: cell.cell_id, amount: 100, minMultiplier: cell.multiplier,
      }); // 202: durable; a network error retries the same signed body (never a double debit)
      return receipt;
    } catch (error) {
      const moved = error instanceof ApiError && ["multiplier_below_minimum", "cell_closed"].includes(error.code);
      if (!moved || tap === 5) throw error;
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await quickstart(process.argv[2]));
