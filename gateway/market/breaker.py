"""The circuit breaker of one market: NORMAL (0), WARNING (1), CRITICAL (2).

Three inputs, the state is the worst of them:
- feed age: WARNING after ``feed_warning_ms`` without a tick, CRITICAL after
  ``feed_critical_ms``; a feed-caused state goes down only after the feed has been healthy
  for ``recover_ms``;
- house liability against the market's cap: follows the liability both ways at once;
- an operator halt: CRITICAL until an operator resumes.
A quote older than ``max_quote_age_ms`` (by the newest tick's source timestamp) is a
WARNING reason; bets meanwhile get 503 ``quote_stale`` from the market itself.
WARNING only reports; CRITICAL refuses new bets (503 ``market_halted``). No clock here:
``now_ms`` is passed in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.market.config import MarketConfig

__all__ = ["Breaker", "State", "Transition"]


class State(enum.IntEnum):
    """A breaker state; the number is what /api/markets and the metrics show."""

    NORMAL = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        """The lower-case name the API and the logs use."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Transition:
    market: str
    old: State
    new: State
    reasons: tuple[str, ...]


@dataclass(slots=True)
class Breaker:
    cfg: MarketConfig
    halted: str | None = None
    state: State = State.CRITICAL
    reasons: tuple[str, ...] = ("no price feed yet",)
    _feed: State = State.CRITICAL
    _better_since: int | None = None

    def _feed_level(self, age_ms: int | None) -> State:
        cfg = self.cfg
        if age_ms is None or age_ms >= cfg.feed_critical_ms:
            return State.CRITICAL
        if age_ms >= cfg.feed_warning_ms:
            return State.WARNING
        return State.NORMAL

    def update(
        self,
        now_ms: int,
        feed_age_ms: int | None,
        liability: int,
        quote_age_ms: int | None = None,
    ) -> Transition | None:
        """Re-evaluate; return the transition if the state changed."""
        cfg = self.cfg
        raw = self._feed_level(feed_age_ms)
        if raw >= self._feed:
            self._feed = raw
            self._better_since = None
        elif self._better_since is None:
            self._better_since = now_ms
        elif now_ms - self._better_since >= cfg.recover_ms:
            self._feed = raw
            self._better_since = None
        ratio = liability / cfg.market_liability_cap
        risk = (
            State.CRITICAL
            if ratio >= cfg.liability_critical
            else State.WARNING
            if ratio >= cfg.liability_warning
            else State.NORMAL
        )
        reasons = []
        if self._feed:
            reasons.append(
                "no price feed yet"
                if feed_age_ms is None
                else f"price feed {self._feed.label}: last tick {feed_age_ms} ms ago"
                if raw
                else "price feed recovering"
            )
        stale = quote_age_ms is not None and quote_age_ms > cfg.max_quote_age_ms
        if stale:
            reasons.append(f"quote stale: the newest price is {quote_age_ms} ms old")
        if risk:
            reasons.append(f"house liability at {ratio:.0%} of its cap")
        if self.halted is not None:
            reasons.append(f"halted by an operator: {self.halted}")
        state = max(
            self._feed,
            risk,
            State.WARNING if stale else State.NORMAL,
            State.CRITICAL if self.halted is not None else State.NORMAL,
        )
        old = self.state
        self.reasons = tuple(reasons)
        if state == old:
            return None
        self.state = state
        return Transition(cfg.symbol, old, state, self.reasons)
