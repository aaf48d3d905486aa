cdef class _Bucket:
    cdef double tokens
    cdef double last


cdef class TokenBuckets:
    cdef readonly double rate
    cdef readonly double burst
    cdef readonly Py_ssize_t max_keys
    cdef public Py_ssize_t evictions
    cdef double _fill_seconds
    cdef object _buckets  # an OrderedDict

    cpdef double take(self, str key, double now, double cost=*)
    cpdef double tokens(self, str key, double now)
    cpdef Py_ssize_t prune(self, double now)
    cdef void _make_room(self, double now)
