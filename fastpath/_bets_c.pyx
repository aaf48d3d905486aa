# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled fast path of ``_bets_py``: the fields of a bet body that is well-formed in the
common way, recognised in one C call; None for anything else.

It only ever says yes. Every body it does not recognise goes to gateway/wire.py's table,
which decides and words the refusal, so this recognises a subset of what the table
accepts, never more (tests/fastpath/test_bets.py holds it to that over generated near
misses). The rules, as wire.py's ``BET`` states them:

    wallet          [0-9a-f]{64}
    market          one of ``markets``
    cell_id         cell-(0|[1-9][0-9]{0,17})-(0|[1-9][0-9]{0,17})
    amount          a JSON integer, 1 to 10**12
    nonce           [A-Za-z0-9_-]{1,64}
    timestamp       a JSON integer, 0 to 10**15
    min_multiplier  (0|[1-9][0-9]{0,5})\\.[0-9]{2}, optional
    signature       [0-9a-f]{128}

no other member, and no member twice (as parse_bet's cheap test: one ':' a member).
"""

__all__ = ["bet_fields"]

cdef object _MAX_AMOUNT = 10**12
cdef object _MAX_TIMESTAMP = 10**15


cdef bint _hex(object value, Py_ssize_t digits):
    cdef Py_UCS4 ch
    if type(value) is not str or len(<str>value) != digits:
        return False
    for ch in <str>value:
        if not (c'0' <= ch <= c'9' or c'a' <= ch <= c'f'):
            return False
    return True


cdef long long _number(str text, Py_ssize_t start, Py_ssize_t end, Py_ssize_t most):
    """The value of text[start:end] when it is (0|[1-9][0-9]{0,most-1}); -1 otherwise."""
    cdef Py_ssize_t i
    cdef Py_UCS4 ch
    cdef long long value = 0
    if end <= start or end - start > most:
        return -1
    if text[start] == c'0':
        return 0 if end - start == 1 else -1
    for i in range(start, end):
        ch = text[i]
        if not c'0' <= ch <= c'9':
            return -1
        value = value * 10 + (<long long>ch - c'0')
    return value


cdef bint _nonce(object value):
    cdef Py_UCS4 ch
    if type(value) is not str or not 1 <= len(<str>value) <= 64:
        return False
    for ch in <str>value:
        if not (c'a' <= ch <= c'z' or c'A' <= ch <= c'Z' or c'0' <= ch <= c'9'
                or ch == c'_' or ch == c'-'):
            return False
    return True


cdef bint _multiplier(object value):
    cdef Py_ssize_t n
    cdef str text
    if type(value) is not str:
        return False
    text = <str>value
    n = len(text)
    return (
        n >= 4
        and text[n - 3] == c'.'
        and _number(text, 0, n - 3, 6) >= 0
        and _number(text, n - 2, n - 1, 1) >= 0
        and _number(text, n - 1, n, 1) >= 0
    )


cdef bint _integer(object value, object low, object high):
    return type(value) is int and low <= value <= high


def bet_fields(object body, dict data, object markets):
    """(wallet, market, cell_id, row, col, amount, nonce, timestamp, min_multiplier,
    signature) of a well-formed bet, ``data`` being ``body`` decoded; None otherwise."""
    cdef Py_ssize_t members = len(data), colons = 0, i, n, dash
    cdef const char *raw
    cdef str cell
    cdef long long row, col
    if type(body) is not bytes or not 7 <= members <= 8:
        return None
    wallet = data.get("wallet")
    market = data.get("market")
    cell_id = data.get("cell_id")
    amount = data.get("amount")
    nonce = data.get("nonce")
    timestamp = data.get("timestamp")
    signature = data.get("signature")
    minimum = data.get("min_multiplier")
    if members == 8 and minimum is None:  # an eighth member, and not this one
        return None
    if not (
        _hex(wallet, 64)
        and type(market) is str
        and market in markets
        and _integer(amount, 1, _MAX_AMOUNT)
        and _nonce(nonce)
        and _integer(timestamp, 0, _MAX_TIMESTAMP)
        and (minimum is None or _multiplier(minimum))
        and _hex(signature, 128)
        and type(cell_id) is str
    ):
        return None
    cell = <str>cell_id
    n = len(cell)
    if n < 8 or not cell.startswith(u"cell-"):
        return None
    dash = cell.find(u"-", 5)
    if dash < 0:
        return None
    row = _number(cell, 5, dash, 18)
    col = _number(cell, dash + 1, n, 18)
    if row < 0 or col < 0:
        return None
    raw = <const char *>body
    for i in range(len(<bytes>body)):
        colons += raw[i] == c':'
    if colons != members:
        return None
    return (wallet, market, cell_id, row, col, amount, nonce, timestamp, minimum, signature)
