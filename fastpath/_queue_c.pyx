# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled twin of ``_queue_py``: a ring buffer with the same behaviour."""

__all__ = ["BatchQueue"]


cdef class BatchQueue:
    def __init__(self, capacity):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = int(capacity)
        self._slots = [None] * self.capacity
        self._head = 0
        self._count = 0

    def __len__(self):
        return self._count

    cpdef Py_ssize_t push(self, object item):
        if self._count >= self.capacity:
            return 0
        self._slots[(self._head + self._count) % self.capacity] = item
        self._count += 1
        return self._count

    cpdef object head(self):
        if self._count == 0:
            return None
        return self._slots[self._head]

    cpdef list drain(self, Py_ssize_t n):
        cdef Py_ssize_t count = n if n < self._count else self._count
        cdef Py_ssize_t i, slot
        cdef list out
        if count <= 0:
            return []
        out = [None] * count
        for i in range(count):
            slot = (self._head + i) % self.capacity
            out[i] = self._slots[slot]
            self._slots[slot] = None
        self._head = (self._head + count) % self.capacity
        self._count -= count
        return out
