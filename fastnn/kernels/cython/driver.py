"""Cython batch gather (csrc/driver.pxi); the plan driver is :mod:`.plan` (csrc/plan.pxi)."""
import numpy as np

from ._adapt import _back, _fast_path, _in, _in1, _k, _out, _rows_ok


@_fast_path(_k.gather_rows)
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]]."""
    if not _rows_ok(X):  # never copy a whole dataset to gather a batch
        np.take(X, idx, axis=0, out=out)
        return
    buf, dest = _out(out)
    _k.gather_rows(_in(X, buf.dtype) if X.dtype != buf.dtype else X, _in1(idx, np.int64), buf)
    _back(buf, dest)
