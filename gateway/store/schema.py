"""Schema and forward-only migrations. ``PRAGMA user_version`` is the schema version.

Invariants live in the database as well as in the code:
- a wallet account can never go below zero (CHECK);
- balances move only through ledger rows (the ``ledger_apply`` trigger), and ledger
  rows are immutable; each (txn, account) is posted at most once (UNIQUE);
- a nonce is used once per wallet for ever (UNIQUE (wallet, nonce));
- a bet's status moves only from accepted to won, lost or void, and only by inserting its
  one settlement, whose payout must match the bet (v2);
- ticks only increase in seq and source timestamp per market, and never change (v2);
- money rows are never deleted: ticks and settlements refuse DELETE (v5);
- a balance changes only by the ledger row being applied: an UPDATE of ``balance`` must
  advance ``last_ledger`` to a ledger row of that account carrying exactly the change, and
  only ``ledger_apply`` does that (v5);
- ledger rows come in balanced pairs: they are written through the ``postings`` view,
  whose trigger inserts both legs of one amount; a direct INSERT into ``ledger`` is
  refused (v5). ``tapgate check`` also sums every transaction;
- each bet records the quote it was priced on: tick seq, sigma band, P(win) (v5);
- a bet is never stored without its stake, nor settled won or void without its payout or
  refund: inserting the bet or the settlement posts them in the same statement (v7).

Indexes on ``bets`` are few on purpose: every index keyed by wallet takes an insert at a
random place per bet, and those pages are what each group commit and checkpoint write.
``UNIQUE (wallet, nonce)`` also serves the per-wallet lookups (ADR 2).
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "connect_pragmas", "migrate"]

_V1 = """
CREATE TABLE accounts (
    id      TEXT PRIMARY KEY,
    kind    TEXT NOT NULL CHECK (kind IN ('wallet', 'deposits', 'house')),
    balance INTEGER NOT NULL DEFAULT 0 CHECK (typeof(balance) = 'integer'),
    CHECK (kind <> 'wallet' OR balance >= 0),
    CHECK (kind <> 'wallet' OR (length(id) = 64 AND id NOT GLOB '*[^0-9a-f]*'))
);
INSERT INTO accounts (id, kind) VALUES ('deposits', 'deposits'), ('house', 'house');

CREATE TABLE deposits (
    reference  TEXT PRIMARY KEY,
    wallet     TEXT NOT NULL REFERENCES accounts (id),
    amount     INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount > 0),
    created_at INTEGER NOT NULL
);

CREATE TABLE bets (
    id               INTEGER PRIMARY KEY,
    wallet           TEXT NOT NULL REFERENCES accounts (id),
    nonce            TEXT NOT NULL,
    market           TEXT NOT NULL,
    cell_id          TEXT NOT NULL,
    amount           INTEGER NOT NULL CHECK (typeof(amount) = 'integer'
                                             AND amount BETWEEN 1 AND 1000000000000),
    multiplier       INTEGER NOT NULL CHECK (typeof(multiplier) = 'integer' AND multiplier > 100),
    potential_payout INTEGER NOT NULL CHECK (potential_payout = amount * multiplier / 100),
    min_multiplier   TEXT,
    ts               INTEGER NOT NULL,
    signature        TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'accepted'
                     CHECK (status IN ('accepted', 'won', 'lost', 'void')),
    accepted_at      INTEGER NOT NULL,
    batch_id         INTEGER NOT NULL,
    receipt          TEXT NOT NULL,
    UNIQUE (wallet, nonce)
);
CREATE INDEX bets_accepted_at ON bets (accepted_at);

CREATE TRIGGER bets_status_transition BEFORE UPDATE OF status ON bets
WHEN OLD.status <> 'accepted' OR NEW.status NOT IN ('won', 'lost', 'void')
BEGIN
    SELECT RAISE(ABORT, 'bet status may only move from accepted to won, lost or void');
END;

CREATE TABLE ledger (
    id         INTEGER PRIMARY KEY,
    txn        TEXT NOT NULL,
    account    TEXT NOT NULL REFERENCES accounts (id),
    amount     INTEGER NOT NULL CHECK (typeof(amount) = 'integer' AND amount <> 0),
    kind       TEXT NOT NULL CHECK (kind IN ('deposit', 'stake', 'payout', 'refund')),
    bet_id     INTEGER REFERENCES bets (id),
    created_at INTEGER NOT NULL,
    UNIQUE (txn, account)
);

CREATE TRIGGER ledger_apply AFTER INSERT ON ledger
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account;
    SELECT RAISE(ABORT, 'ledger row names no account') WHERE changes() = 0;
END;
CREATE TRIGGER ledger_immutable_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are immutable');
END;
CREATE TRIGGER ledger_immutable_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are immutable');
END;
"""

# v2: markets. Ticks (immutable, strictly increasing per market), settlements (one per bet;
# inserting one moves the bet's status), operator halts, and an index of open bets.
_V2 = """
CREATE TABLE ticks (
    market      TEXT NOT NULL,
    seq         INTEGER NOT NULL CHECK (typeof(seq) = 'integer' AND seq > 0),
    price       INTEGER NOT NULL CHECK (typeof(price) = 'integer' AND price > 0),
    ts          INTEGER NOT NULL CHECK (typeof(ts) = 'integer'),
    received_at INTEGER NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('sim', 'oracle')),
    signature   TEXT,
    PRIMARY KEY (market, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX ticks_ts ON ticks (market, ts);

CREATE TRIGGER ticks_increase BEFORE INSERT ON ticks
WHEN EXISTS (SELECT 1 FROM ticks WHERE market = NEW.market AND seq >= NEW.seq)
  OR EXISTS (SELECT 1 FROM ticks WHERE market = NEW.market AND ts >= NEW.ts)
BEGIN
    SELECT RAISE(ABORT, 'ticks must increase in seq and ts');
END;
CREATE TRIGGER ticks_immutable_update BEFORE UPDATE ON ticks
BEGIN
    SELECT RAISE(ABORT, 'ticks are immutable');
END;

CREATE TABLE settlements (
    bet_id     INTEGER PRIMARY KEY REFERENCES bets (id),
    outcome    TEXT NOT NULL CHECK (outcome IN ('won', 'lost', 'void')),
    payout     INTEGER NOT NULL CHECK (typeof(payout) = 'integer' AND payout >= 0),
    tick_seq   INTEGER,
    settled_at INTEGER NOT NULL
);

CREATE TRIGGER settlements_match_bet BEFORE INSERT ON settlements
WHEN NEW.payout <> (
    SELECT CASE NEW.outcome WHEN 'won' THEN potential_payout WHEN 'void' THEN amount ELSE 0 END
      FROM bets WHERE id = NEW.bet_id)
BEGIN
    SELECT RAISE(ABORT, 'settlement payout does not match the bet');
END;
CREATE TRIGGER settlements_apply AFTER INSERT ON settlements
BEGIN
    UPDATE bets SET status = NEW.outcome WHERE id = NEW.bet_id AND status = 'accepted';
    SELECT RAISE(ABORT, 'bet is not open') WHERE changes() = 0;
END;
CREATE TRIGGER settlements_immutable BEFORE UPDATE ON settlements
BEGIN
    SELECT RAISE(ABORT, 'settlements are immutable');
END;
CREATE TRIGGER bets_status_needs_settlement BEFORE UPDATE OF status ON bets
WHEN NOT EXISTS (SELECT 1 FROM settlements WHERE bet_id = NEW.id AND outcome = NEW.status)
BEGIN
    SELECT RAISE(ABORT, 'a bet status changes only through its settlement');
END;

CREATE INDEX bets_open ON bets (market, id) WHERE status = 'accepted';

CREATE TABLE market_halts (
    market    TEXT PRIMARY KEY,
    reason    TEXT NOT NULL,
    halted_at INTEGER NOT NULL
);
"""

# v3: results of the operator jobs (backup, archive, check), exported as metrics.
_V3 = """
CREATE TABLE ops_runs (
    id          INTEGER PRIMARY KEY,
    job         TEXT NOT NULL CHECK (job IN ('backup', 'archive', 'check')),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
    detail      TEXT NOT NULL
);
CREATE INDEX ops_runs_job ON ops_runs (job, finished_at);
"""

# v4: archived bets leave a stub: the row stays (ledger, lookups and nonce uniqueness keep
# using it) without its receipt and signature, and names the archive holding them.
_V4 = """
ALTER TABLE bets ADD COLUMN archive TEXT;
"""

# v5: money as strict in the database as in the code, and the quote behind each bet.
_V5 = """
ALTER TABLE bets ADD COLUMN quote_seq INTEGER;
ALTER TABLE bets ADD COLUMN quote_sigma_low REAL;
ALTER TABLE bets ADD COLUMN quote_sigma_high REAL;
ALTER TABLE bets ADD COLUMN quote_p REAL;

CREATE TRIGGER ticks_no_delete BEFORE DELETE ON ticks
BEGIN
    SELECT RAISE(ABORT, 'ticks are never deleted');
END;
CREATE TRIGGER settlements_no_delete BEFORE DELETE ON settlements
BEGIN
    SELECT RAISE(ABORT, 'settlements are never deleted');
END;

ALTER TABLE accounts ADD COLUMN last_ledger INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET last_ledger = coalesce(
    (SELECT max(id) FROM ledger WHERE ledger.account = accounts.id), 0);
DROP TRIGGER ledger_apply;
CREATE TRIGGER ledger_apply AFTER INSERT ON ledger
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount, last_ledger = NEW.id
     WHERE id = NEW.account;
    SELECT RAISE(ABORT, 'ledger row names no account') WHERE changes() = 0;
END;
CREATE TRIGGER accounts_balance_by_ledger BEFORE UPDATE OF balance, last_ledger ON accounts
WHEN NEW.balance <> OLD.balance OR NEW.last_ledger <> OLD.last_ledger
BEGIN
    SELECT RAISE(ABORT, 'a balance changes only through its ledger row')
     WHERE NEW.last_ledger <= OLD.last_ledger
        OR NOT EXISTS (SELECT 1 FROM ledger WHERE id = NEW.last_ledger AND account = NEW.id
                          AND amount = NEW.balance - OLD.balance);
END;

CREATE TABLE ledger_pairing (open INTEGER NOT NULL CHECK (open = 1));
CREATE VIEW postings (txn, debit, credit, amount, kind, bet_id, created_at) AS
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE 0;
CREATE TRIGGER postings_insert INSTEAD OF INSERT ON postings
BEGIN
    INSERT INTO ledger_pairing (open) VALUES (1);
    INSERT INTO ledger (txn, account, amount, kind, bet_id, created_at)
    VALUES (NEW.txn, NEW.debit, -NEW.amount, NEW.kind, NEW.bet_id, NEW.created_at),
           (NEW.txn, NEW.credit, NEW.amount, NEW.kind, NEW.bet_id, NEW.created_at);
    DELETE FROM ledger_pairing;
END;
CREATE TRIGGER ledger_in_pairs BEFORE INSERT ON ledger
WHEN NOT EXISTS (SELECT 1 FROM ledger_pairing)
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are written in balanced pairs through postings');
END;
"""

# v6: tick retention (ops/tick_retention.py). A tick leaves the main database only after
# its copy in the archive was verified and the move recorded; nothing else may delete one.
_V6 = """
CREATE TABLE tick_archives (
    id          INTEGER PRIMARY KEY,
    market      TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    below_seq   INTEGER NOT NULL CHECK (below_seq > first_seq),
    archive     TEXT NOT NULL,
    rows        INTEGER NOT NULL CHECK (rows > 0),
    checksum    TEXT NOT NULL,
    archived_at INTEGER NOT NULL
);
CREATE INDEX tick_archives_range ON tick_archives (market, first_seq);
CREATE TRIGGER tick_archives_immutable BEFORE UPDATE ON tick_archives
BEGIN
    SELECT RAISE(ABORT, 'tick archive records are immutable');
END;
CREATE TRIGGER tick_archives_no_delete BEFORE DELETE ON tick_archives
BEGIN
    SELECT RAISE(ABORT, 'tick archive records are never deleted');
END;
DROP TRIGGER ticks_no_delete;
CREATE TRIGGER ticks_no_delete BEFORE DELETE ON ticks
WHEN NOT EXISTS (SELECT 1 FROM tick_archives WHERE market = OLD.market
                    AND OLD.seq >= first_seq AND OLD.seq < below_seq)
BEGIN
    SELECT RAISE(ABORT, 'a tick is deleted only once its archived copy is recorded');
END;
"""

# v7: the stake is the bet row's own trigger, the payout or refund the settlement's, so a
# group of bets or a chunk of settlements is one INSERT statement, committed as SQLite's
# implicit transaction (ADR 14): the writer thread takes the GIL back once for it instead
# of once for each of BEGIN, the INSERTs and COMMIT.
_V7 = """
CREATE TRIGGER bets_stake AFTER INSERT ON bets
BEGIN
    INSERT INTO postings (txn, debit, credit, amount, kind, bet_id, created_at)
    VALUES ('stake:' || NEW.id, NEW.wallet, 'house', NEW.amount, 'stake', NEW.id, NEW.accepted_at);
END;
CREATE TRIGGER settlements_pay AFTER INSERT ON settlements WHEN NEW.payout > 0
BEGIN
    INSERT INTO postings (txn, debit, credit, amount, kind, bet_id, created_at)
    SELECT iif(NEW.outcome = 'won', 'payout:', 'refund:') || NEW.bet_id, 'house', wallet,
           NEW.payout, iif(NEW.outcome = 'won', 'payout', 'refund'), NEW.bet_id, NEW.settled_at
      FROM bets WHERE id = NEW.bet_id;
END;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)
SCHEMA_VERSION = len(MIGRATIONS)


def connect_pragmas(synchronous: str) -> str:
    """Pragmas every connection runs first."""
    return (
        f"PRAGMA foreign_keys = ON;PRAGMA busy_timeout = 5000;PRAGMA synchronous = {synchronous};"
    )


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION, one transaction per step; return the old version."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema version {version} is newer than this tapgate ({SCHEMA_VERSION}): "
            "run the newer release or restore a backup taken before the upgrade"
        )
    for step in range(version, SCHEMA_VERSION):
        conn.executescript(
            f"BEGIN IMMEDIATE;{MIGRATIONS[step]};PRAGMA user_version = {step + 1};COMMIT;"
        )
    return int(version)
