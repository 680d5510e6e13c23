"""Options and constants shared by the numba families.

Why the odd-looking constants: an int literal such as ``1 - x`` promotes a
float32 loop to float64 and blocks SIMD, so hot loops take their constants
pre-cast with ``dtype.type``; ``error_model='numpy'`` lets divisions
vectorize. No ``fastmath`` flags that assume finite values: NaN must
propagate so the non-finite guard can see it.
"""
import math

OPTS = dict(cache=True, nogil=True, error_model="numpy")
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
CHUNK = 16384  # elements per parallel chunk of the flat-buffer passes
