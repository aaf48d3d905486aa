"""The bet domain: admission, balances, the replay map, and applying commit outcomes."""
