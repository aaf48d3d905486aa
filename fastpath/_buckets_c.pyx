# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of ``_buckets_py``: same methods, same arithmetic, same results."""

from collections import OrderedDict

__all__ = ["TokenBuckets"]


cdef class _Bucket:
    def __cinit__(self, double tokens, double last):
        self.tokens = tokens
        self.last = last


cdef class TokenBuckets:
    def __init__(self, rate, burst, max_keys):
        if not rate > 0.0:
            raise ValueError("rate must be > 0")
        if not burst >= 1.0:
            raise ValueError("burst must be >= 1")
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = int(max_keys)
        self.evictions = 0
        self._fill_seconds = self.burst / self.rate
        self._buckets = OrderedDict()

    def __len__(self):
        return len(self._buckets)

    cpdef double take(self, str key, double now, double cost=1.0):
        cdef _Bucket bucket
        cdef double elapsed, tokens
        cdef object found = self._buckets.get(key)
        if found is None:
            self._make_room(now)
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
        else:
            self._buckets.move_to_end(key)
            bucket = <_Bucket>found
            elapsed = now - bucket.last
            if elapsed > 0.0:
                tokens = bucket.tokens + elapsed * self.rate
                bucket.tokens = tokens if tokens < self.burst else self.burst
                bucket.last = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate

    cpdef double tokens(self, str key, double now):
        cdef object found = self._buckets.get(key)
        cdef _Bucket bucket
        cdef double elapsed, tokens
        if found is None:
            return self.burst
        bucket = <_Bucket>found
        elapsed = now - bucket.last
        if elapsed > 0.0:
            tokens = bucket.tokens + elapsed * self.rate
            return tokens if tokens < self.burst else self.burst
        return bucket.tokens

    cpdef Py_ssize_t prune(self, double now):
        cdef Py_ssize_t dropped = 0
        cdef object key
        while self._buckets:
            key = next(iter(self._buckets))
            if now - (<_Bucket>self._buckets[key]).last < self._fill_seconds:
                break
            del self._buckets[key]
            dropped += 1
        return dropped

    cdef void _make_room(self, double now):
        cdef object key
        if self._buckets:
            key = next(iter(self._buckets))
            if now - (<_Bucket>self._buckets[key]).last >= self._fill_seconds:
                del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            del self._buckets[next(iter(self._buckets))]
            self.evictions += 1
