"""Write tests/store/fixtures/v<N>.sql: a database at each earlier schema version, with data.

Run once per new schema version (``python -m tests.store.make_fixtures``), when the
migration that follows it is written, and commit the file: a fixture must keep the schema
as that release created it. Existing fixtures are never rewritten.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.schema import MIGRATIONS

FIXTURES = Path(__file__).with_name("fixtures")
WALLET = "ab" * 32

_DATA = {
    1: """
INSERT INTO accounts (id, kind) VALUES ('{w}', 'wallet');
INSERT INTO deposits VALUES ('dep-1', '{w}', 1000, 1);
INSERT INTO ledger (txn, account, amount, kind, created_at) VALUES
  ('deposit:dep-1', 'deposits', -1000, 'deposit', 1), ('deposit:dep-1', '{w}', 1000, 'deposit', 1);
INSERT INTO bets (id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout,
                  min_multiplier, ts, signature, accepted_at, batch_id, receipt)
VALUES (1, '{w}', 'n1', 'BTC-USD', 'cell-650-2990000', 100, 190, 190, NULL, 2, '{sig}',
        3, 1, '{{}}'),
       (2, '{w}', 'n2', 'BTC-USD', 'cell-651-2990000', 50, 250, 125, '1.50', 2, '{sig}',
        3, 1, '{{}}');
INSERT INTO ledger (txn, account, amount, kind, bet_id, created_at) VALUES
  ('stake:1', '{w}', -100, 'stake', 1, 3), ('stake:1', 'house', 100, 'stake', 1, 3),
  ('stake:2', '{w}', -50, 'stake', 2, 3), ('stake:2', 'house', 50, 'stake', 2, 3);
""",
    2: """
INSERT INTO ticks VALUES ('BTC-USD', 1, 6500000, 10, 11, 'sim', NULL),
                         ('BTC-USD', 2, 6500100, 20, 21, 'sim', NULL);
INSERT INTO settlements (bet_id, outcome, payout, tick_seq, settled_at)
VALUES (1, 'won', 190, 2, 30);
INSERT INTO ledger (txn, account, amount, kind, bet_id, created_at) VALUES
  ('payout:1', 'house', -190, 'payout', 1, 30), ('payout:1', '{w}', 190, 'payout', 1, 30);
INSERT INTO market_halts VALUES ('ETH-USD', 'maintenance', 40);
""",
    3: """
INSERT INTO ops_runs (job, started_at, finished_at, ok, detail) VALUES ('backup', 50, 51, 1, 'x');
""",
    4: """
UPDATE bets SET receipt = '', signature = '', archive = 'archive.db' WHERE id = 1;
""",
    5: """
INSERT INTO ticks VALUES ('BTC-USD', 3, 6500200, 30, 31, 'sim', NULL);
INSERT INTO bets (id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout,
                  min_multiplier, ts, signature, accepted_at, batch_id, receipt,
                  quote_seq, quote_sigma_low, quote_sigma_high, quote_p)
VALUES (3, '{w}', 'n3', 'BTC-USD', 'cell-651-2990001', 10, 194, 19, NULL, 31, '{sig}',
        32, 2, '{{}}', 3, 0.0002, 0.0003, 0.5);
INSERT INTO postings (txn, debit, credit, amount, kind, bet_id, created_at)
VALUES ('stake:3', '{w}', 'house', 10, 'stake', 3, 32);
""",
    6: """
INSERT INTO bets (id, wallet, nonce, market, cell_id, amount, multiplier, potential_payout,
                  min_multiplier, ts, signature, accepted_at, batch_id, receipt,
                  quote_seq, quote_sigma_low, quote_sigma_high, quote_p)
VALUES (4, '{w}', 'n4', 'BTC-USD', 'cell-652-2990001', 20, 194, 38, NULL, 41, '{sig}',
        42, 3, '{{}}', 3, 0.0002, 0.0003, 0.5);
INSERT INTO postings (txn, debit, credit, amount, kind, bet_id, created_at)
VALUES ('stake:4', '{w}', 'house', 20, 'stake', 4, 42);
""",
}


def fixture_sql(version: int) -> str:
    """The schema of ``version`` with the data of every version up to it, as SQL."""
    conn = sqlite3.connect(":memory:")
    for step in range(version):
        conn.executescript(MIGRATIONS[step])
        conn.executescript(_DATA[step + 1].format(w=WALLET, sig="0" * 128))
    dump = "\n".join(conn.iterdump())
    return f"-- tapgate schema version {version}\n{dump}\nPRAGMA user_version = {version};\n"


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    for version in range(1, len(MIGRATIONS)):
        path = FIXTURES / f"v{version}.sql"
        if not path.exists():
            path.write_text(fixture_sql(version))
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
