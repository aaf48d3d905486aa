cdef class BatchQueue:
    cdef readonly Py_ssize_t capacity
    cdef list _slots
    cdef Py_ssize_t _head
    cdef Py_ssize_t _count

    cpdef Py_ssize_t push(self, object item)
    cpdef object head(self)
    cpdef list drain(self, Py_ssize_t n)
