"""Schema and forward-only migrations. ``PRAGMA user_version`` is the schema version.

Invariants live in the database as well as in the code:
- a wallet account can never go below zero (CHECK);
- balances move only through ledger rows (the ``ledger_apply`` trigger), and ledger
  rows are immutable; each (txn, account) is posted at most once (UNIQUE);
- a nonce is used once per wallet for ever (UNIQUE (wallet, nonce));
- a bet's status moves only from accepted to won, lost or void, and only by inserting its
  one settlement, whose payout must match the bet (v2);
- ticks only increase in seq and source timestamp per market, and never change (v2).

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

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4)
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
