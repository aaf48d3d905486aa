// The reference client: a live price chart with the open cells over it; tap a cell to bet.
// Everything it does goes through tapgate.mjs, as any frontend's would.

import { ApiError, Client, Stream, Wallet, loadWallet, saveWallet } from "./tapgate.mjs";

/** @typedef {import("./tapgate.mjs").Grid} Grid */
/** @typedef {import("./tapgate.mjs").Cell} Cell */
/** @typedef {import("./tapgate.mjs").MarketSummary} MarketSummary */
/** @typedef {import("./tapgate.mjs").BetList["bets"][number]} BetView */

const STAKES = [10, 50, 100, 500];
const ROW_PX = 46; // every cell at least 44 px high and wide: a thumb's target
const MIN_COL_PX = 52;
const HISTORY = 0.3; // the share of the board's width that shows the price so far
const TAG_CLEARANCE_PX = 16; // a band label this close to the price tag's middle is hidden by it
/** What a cell holding one of our bets says (short: a cell is 48 px wide on a phone). */
const LABELS = /** @type {Record<string, string>} */ ({ pending: "…", accepted: "bet ✓", won: "won", lost: "lost", void: "void" });

/** What each refusal means to a player (codes: docs/API.md). */
const MESSAGES = /** @type {Record<string, (e: ApiError) => string>} */ ({
  rate_limited: (e) => `Too fast: wait ${Math.ceil(e.retryAfter ?? 1)} s and tap again.`,
  cell_closed: () => "That cell has just closed. Pick one further right.",
  insufficient_funds: () => "Not enough balance for this stake. Fund the wallet or bet less.",
  market_halted: (e) => `Betting on this market is paused: ${e.message}`,
  quote_stale: () => "Prices are catching up. Tap again in a moment.",
  multiplier_below_minimum: () => "The multiplier moved below the one shown. Tap again.",
  exposure_limit: (e) => `Limit reached: ${e.message}`,
  pricing_unavailable: () => "This market is warming up: prices come in a few seconds.",
  timestamp_out_of_window: () => "This device's clock is off: set it to the network time.",
  overloaded: () => "The gateway is busy. Tap again.",
  not_found: () => "Funding is off on this gateway (TAPGATE_DEV_FUNDING).",
});

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const fmt = new Intl.NumberFormat("en-US");

const client = new Client("");
const state = {
  /** @type {Wallet | null} */ wallet: null,
  /** @type {string[]} */ markets: [],
  market: "",
  /** @type {Map<string, MarketSummary>} */ summaries: new Map(),
  stake: 100,
  /** @type {Map<string, {price: number, ts: number}[]>} */ ticks: new Map(),
  /** cell state by "<market> <cell_id>": pending, accepted, won, lost, void */
  /** @type {Map<string, string>} */ cells: new Map(),
  /** @type {BetView[]} */ bets: [],
  /** @type {Stream | null} */ stream: null,
};

/** @param {string} text @param {boolean} [bad] */
function say(text, bad = false) {
  const toast = $("toast");
  toast.textContent = text;
  toast.classList.toggle("bad", bad);
}

/** @param {unknown} error */
function explain(error) {
  if (error instanceof ApiError) return (MESSAGES[error.code] ?? ((e) => e.message))(error);
  return "The gateway cannot be reached. Check the connection; bets are safe to retry.";
}

async function ensureWallet() {
  state.wallet = (await loadWallet()) ?? (await Wallet.generate());
  await saveWallet(state.wallet);
  $("address").textContent = state.wallet.address;
}

async function refreshWallet() {
  if (!state.wallet) return;
  try {
    const view = await client.wallet(state.wallet);
    $("balance").textContent = fmt.format(view.balance - view.reserved);
    const list = await client.bets(state.wallet, 20);
    state.bets = list.bets;
    for (const bet of list.bets) state.cells.set(`${bet.market} ${bet.cell_id}`, bet.status);
    renderBets();
  } catch (error) {
    say(explain(error), true);
  }
}

function renderBets() {
  const list = $("bets");
  list.replaceChildren(
    ...state.bets.slice(0, 10).map((bet) => {
      const item = document.createElement("li");
      const what = document.createElement("span");
      what.textContent = `${bet.market} ${bet.cell_id} · ${fmt.format(bet.amount)} × ${bet.multiplier}`;
      const result = document.createElement("span");
      result.className = bet.status;
      result.dataset.bet = bet.bet_id;
      result.textContent = bet.status === "won" ? `won ${fmt.format(bet.payout ?? 0)}` : bet.status;
      item.append(what, result);
      return item;
    }),
  );
}

function renderTabs() {
  $("markets").replaceChildren(
    ...state.markets.map((symbol) => {
      const tab = document.createElement("button");
      tab.type = "button";
      tab.textContent = symbol;
      tab.setAttribute("aria-pressed", String(symbol === state.market));
      tab.addEventListener("click", () => showMarket(symbol));
      return tab;
    }),
  );
}

function renderStakes() {
  $("stakes").replaceChildren(
    ...STAKES.map((amount) => {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.setAttribute("role", "radio");
      chip.setAttribute("aria-checked", String(amount === state.stake));
      chip.textContent = fmt.format(amount);
      chip.addEventListener("click", () => {
        state.stake = amount;
        renderStakes();
      });
      return chip;
    }),
  );
}

/** @param {string} symbol */
function showMarket(symbol) {
  const previous = state.market;
  state.market = symbol;
  renderTabs();
  if (state.stream && previous && previous !== symbol) {
    state.stream.markets = [symbol];
    state.stream.ws?.send(JSON.stringify({ op: "unwatch", markets: [previous] }));
    state.stream.watch([symbol]);
  }
  draw();
}

/** The board's geometry now: time and price to pixels. */
function layout() {
  const board = /** @type {HTMLElement} */ ($("cells"));
  const width = board.clientWidth;
  const height = board.clientHeight;
  const grid = state.stream?.grids.get(state.market);
  const summary = state.summaries.get(state.market);
  if (!grid || !summary || grid.price === null) return null;
  const { band, column_ms: columnMs, horizon_ms: horizonMs } = summary.grid;
  const columns = Math.ceil(horizonMs / columnMs) + 1.5; // every open column, if they fit
  const colPx = Math.max(MIN_COL_PX, Math.min(96, (width * (1 - HISTORY)) / columns));
  const nowX = Math.round(width * HISTORY);
  const now = client.now();
  const priceRow = Math.floor(grid.price / band);
  const rows = Math.max(3, Math.floor(height / ROW_PX));
  const topRow = priceRow + Math.floor(rows / 2); // rows count down the board
  return {
    width, height, band, colPx, nowX, now, priceRow, rows, topRow, grid,
    x: (/** @type {number} */ t) => nowX + ((t - now) / columnMs) * colPx,
    y: (/** @type {number} */ price) => (topRow + 1 - price / band) * ROW_PX,
  };
}

function draw() {
  const view = layout();
  const canvas = /** @type {HTMLCanvasElement} */ ($("chart"));
  const ctx = canvas.getContext("2d");
  if (!view || !ctx) return;
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(view.width * ratio)) canvas.width = Math.round(view.width * ratio);
  if (canvas.height !== Math.round(view.height * ratio)) canvas.height = Math.round(view.height * ratio);
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, view.width, view.height);
  ctx.strokeStyle = "#30363d";
  ctx.lineWidth = 1;
  for (let r = 0; r <= view.rows; r++) {
    ctx.beginPath();
    ctx.moveTo(0, r * ROW_PX + 0.5);
    ctx.lineTo(view.width, r * ROW_PX + 0.5);
    ctx.stroke();
  }
  ctx.fillStyle = "#8b949e";
  ctx.font = "11px system-ui, sans-serif";
  const tagY = view.y(/** @type {number} */ (view.grid.price));
  for (let r = 0; r < view.rows; r++) {
    const low = (view.topRow - r) * view.band; // the band's lower edge, at the row's bottom
    const baseline = (r + 1) * ROW_PX - 4;
    if (Math.abs(baseline - 4 - tagY) < TAG_CLEARANCE_PX) continue; // the price tag is there
    ctx.fillText(fmt.format(low), 4, baseline);
  }
  ctx.strokeStyle = "#f7b955";
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(view.nowX + 0.5, 0);
  ctx.lineTo(view.nowX + 0.5, view.height);
  ctx.stroke();
  ctx.setLineDash([]);
  const ticks = state.ticks.get(state.market) ?? [];
  ctx.strokeStyle = "#58a6ff";
  ctx.lineWidth = 2;
  ctx.beginPath();
  ticks.forEach((tick, i) => {
    const px = Math.min(view.x(tick.ts), view.nowX);
    const py = view.y(tick.price);
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  });
  ctx.stroke();
  const tag = $("price");
  tag.textContent = fmt.format(/** @type {number} */ (view.grid.price));
  tag.style.top = `${tagY}px`;
  drawCells(view);
}

/** @param {NonNullable<ReturnType<typeof layout>>} view */
function drawCells(view) {
  const holder = $("cells");
  /** @type {Map<string, HTMLButtonElement>} */
  const existing = new Map();
  for (const el of holder.querySelectorAll("button.cell")) {
    existing.set(/** @type {string} */ (/** @type {HTMLElement} */ (el).dataset.cell), /** @type {HTMLButtonElement} */ (el));
  }
  const shown = new Set();
  for (const cell of view.grid.cells) {
    const left = view.x(cell.start_ms) + 2;
    const top = (view.topRow - cell.row) * ROW_PX + 1;
    if (left + view.colPx > view.width || top < 0 || top + ROW_PX > view.height + 1) continue;
    shown.add(cell.cell_id);
    let button = existing.get(cell.cell_id);
    if (!button) {
      button = document.createElement("button");
      button.type = "button";
      button.className = "cell";
      button.dataset.cell = cell.cell_id;
      button.addEventListener("click", () => tap(/** @type {HTMLButtonElement} */ (button)));
      holder.append(button);
    }
    const mark = state.cells.get(`${state.market} ${cell.cell_id}`);
    button.dataset.multiplier = cell.multiplier;
    button.textContent = mark && mark !== "pending" ? LABELS[mark] : `${cell.multiplier}×`;
    if (mark) button.dataset.state = mark;
    else delete button.dataset.state;
    button.classList.toggle("price-row", cell.row === view.priceRow);
    button.setAttribute("aria-label", `bet ${cell.low} to ${cell.high} in window ${cell.col}, pays ${cell.multiplier} times`);
    button.style.left = `${left}px`;
    button.style.top = `${top}px`;
    button.style.width = `${view.colPx - 4}px`;
    button.style.height = `${ROW_PX - 2}px`;
  }
  // cells that left the grid (their column locked) stay while one of them holds our bet
  for (const [id, button] of existing) {
    const mark = state.cells.get(`${state.market} ${id}`);
    if (shown.has(id)) continue;
    const [, row, col] = id.split("-").map(Number);
    const summary = /** @type {MarketSummary} */ (state.summaries.get(state.market));
    const left = view.x(col * summary.grid.column_ms) + 2;
    const top = (view.topRow - row) * ROW_PX + 1;
    if (!mark || left + view.colPx < 0 || top < 0 || top + ROW_PX > view.height + 1) {
      button.remove();
      continue;
    }
    button.disabled = true;
    button.dataset.state = mark;
    button.textContent = LABELS[mark] ?? mark;
    button.style.left = `${left}px`;
    button.style.top = `${top}px`;
  }
}

/** @param {HTMLButtonElement} button */
async function tap(button) {
  const cellId = /** @type {string} */ (button.dataset.cell);
  const key = `${state.market} ${cellId}`;
  if (!state.wallet || button.disabled || state.cells.get(key) === "pending") return;
  state.cells.set(key, "pending");
  draw();
  say(`Placing ${fmt.format(state.stake)} on ${cellId}…`);
  try {
    const { receipt } = await client.placeBet(state.wallet, {
      market: state.market,
      cellId,
      amount: state.stake,
      minMultiplier: button.dataset.multiplier,
    });
    state.cells.set(key, "accepted");
    $("balance").textContent = fmt.format(receipt.balance);
    say(`Accepted: ${fmt.format(receipt.amount)} at ${receipt.multiplier}× (pays ${fmt.format(receipt.potential_payout)}).`);
    refreshWallet();
  } catch (error) {
    state.cells.delete(key);
    say(explain(error), true);
  }
  draw();
}

/** @param {CustomEvent} event */
function onResult(event) {
  const result = event.detail;
  state.cells.set(`${result.market} ${result.cell_id}`, result.status);
  $("balance").textContent = fmt.format(result.balance);
  const won = result.status === "won" ? ` +${fmt.format(result.payout)}` : "";
  say(`${result.cell_id}: ${result.status}${won}`, result.status === "lost");
  refreshWallet();
  draw();
}

function connect() {
  const stream = new Stream("", { markets: [state.market], wallet: state.wallet, now: () => client.now() });
  state.stream = stream;
  stream.addEventListener("state", (event) => {
    const { connected } = /** @type {CustomEvent} */ (event).detail;
    const link = $("link");
    link.textContent = connected ? "live" : "reconnecting";
    link.classList.toggle("up", connected);
    if (connected) refreshWallet(); // results that settled while the stream was down
  });
  stream.addEventListener("snapshot", (event) => {
    const { summary } = /** @type {CustomEvent} */ (event).detail;
    state.summaries.set(summary.market, summary);
  });
  stream.addEventListener("tick", (event) => {
    const tick = /** @type {CustomEvent} */ (event).detail;
    const list = state.ticks.get(tick.market) ?? [];
    list.push({ price: tick.price, ts: tick.ts });
    if (list.length > 600) list.splice(0, list.length - 600);
    state.ticks.set(tick.market, list);
  });
  stream.addEventListener("grid", () => draw());
  stream.addEventListener("bet_result", (event) => onResult(/** @type {CustomEvent} */ (event)));
  stream.addEventListener("error", (event) => say(/** @type {CustomEvent} */ (event).detail.message, true));
  stream.start();
}

async function fund() {
  if (!state.wallet) return;
  try {
    const funded = await client.devFund(state.wallet, 1000);
    $("balance").textContent = fmt.format(funded.balance);
    say(`Funded: balance ${fmt.format(funded.balance)}.`);
  } catch (error) {
    say(explain(error), true);
  }
}

async function importKey() {
  try {
    const wallet = await Wallet.fromKeyFile(/** @type {HTMLTextAreaElement} */ ($("keyfile")).value);
    await saveWallet(wallet);
    /** @type {HTMLTextAreaElement} */ ($("keyfile")).value = "";
    state.wallet = wallet;
    $("address").textContent = wallet.address;
    state.stream?.follow(wallet);
    state.cells.clear();
    await refreshWallet();
    say("Using the imported key.");
  } catch (error) {
    say(error instanceof Error ? error.message : String(error), true);
  }
}

async function main() {
  renderStakes();
  $("fund").addEventListener("click", fund);
  $("import").addEventListener("click", importKey);
  await ensureWallet();
  const list = await client.markets();
  for (const summary of list.markets) state.summaries.set(summary.market, summary);
  state.markets = list.markets.map((m) => m.market);
  state.market = state.markets[0];
  renderTabs();
  connect();
  await refreshWallet();
  setInterval(draw, 250); // the board slides left as time passes
  window.addEventListener("resize", draw);
}

main().catch((error) => say(explain(error), true));
