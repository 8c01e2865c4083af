# The one loop a lookup's gradient is built with, shared by embedding.segment_sum and the
# optimizer kernels that take a table's gradient by rows (elementwise): a table row's gradient
# is the sum of the output-gradient rows at the positions where its id occurs, in position order.
from cython cimport floating


cdef inline void sum_rows(floating *out, const floating *rows, const long long *order, long long lo,
                          long long hi, Py_ssize_t width) noexcept nogil:
    """out = sum of rows[order[lo:hi]] (width each) in that order, or zeros when lo == hi."""
    cdef Py_ssize_t j
    cdef long long i
    cdef const floating *r
    if lo == hi:
        for j in range(width):
            out[j] = 0
        return
    r = rows + order[lo] * width
    for j in range(width):
        out[j] = r[j]
    for i in range(lo + 1, hi):
        r = rows + order[i] * width
        for j in range(width):
            out[j] += r[j]
