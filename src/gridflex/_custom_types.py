"""Type aliases shared across gridflex.

Feeder data lives in NumPy (float64/complex128) so that a feeder keeps full precision
whatever JAX's x64 flag is; computations cast it to JAX's default dtype at solve time.
Both kinds of array are therefore accepted where feeder data is annotated.
"""

import numpy as np
from jaxtyping import Array


AnyArray = Array | np.ndarray
