"""zcnas-example: a real zcnas plugin with two proxies that are not in zcnas' core.

* ``l2_norm``: the summed L2 norm of the Conv2d/Linear weights at initialisation.
* ``epe_nas``: EPE-NAS, the per-class correlation of input Jacobians.

Both are registered through the ``zcnas.proxies`` entry-point group in ``pyproject.toml``;
nothing here registers itself on import.
"""

from zcnas_example._epe_nas import EpeNasProxy
from zcnas_example._l2_norm import L2NormProxy


__version__ = "0.1.0"
__all__ = ["EpeNasProxy", "L2NormProxy", "__version__"]
