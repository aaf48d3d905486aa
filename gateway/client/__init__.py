"""Client side: what runs on a player's or an operator's machine, never in the gateway.

Wallet keys and signed requests (wallet.py), the oracle feeder, the smoke test and the
CLI's terminal views. The server imports nothing from here (tests/test_layers.py).
"""
