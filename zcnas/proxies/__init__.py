"""Zero-cost proxies: single-network scores at initialisation. Plugins: entry-point group
``zcnas.proxies``. (Scores composed from several proxies, such as ensembles, are evaluators:
``zcnas.scoring.Evaluator``.)

To add a proxy: subclass :class:`Proxy` in a new module here (or in a plugin package), decorate
it with ``@register_proxy("name")``, and import the module below.
"""

from zcnas.proxies import _size  # noqa: F401,I001  (built-ins register on import)
from zcnas.proxies import _gradalign  # noqa: F401,I001
from zcnas.proxies import _gradsign  # noqa: F401,I001
from zcnas.proxies import _lga  # noqa: F401,I001
from zcnas.proxies import _gradient  # noqa: F401,I001
from zcnas.proxies import _synflow  # noqa: F401,I001
from zcnas.proxies import _jacobian  # noqa: F401,I001
from zcnas.proxies import _zico  # noqa: F401,I001
from zcnas.proxies import _aznas  # noqa: F401,I001
from zcnas.proxies import _vkdnw  # noqa: F401,I001
from zcnas.proxies import _meco  # noqa: F401,I001
from zcnas.proxies import _swap  # noqa: F401,I001
from zcnas.proxies import _tenas  # noqa: F401,I001
from zcnas.proxies import _knas  # noqa: F401,I001
from zcnas.proxies import _zen  # noqa: F401,I001
from zcnas.proxies._base import Direction
from zcnas.proxies._base import Proxy
from zcnas.proxies._registry import PROXIES
from zcnas.proxies._registry import get_proxy
from zcnas.proxies._registry import list_proxies
from zcnas.proxies._registry import register_proxy


__all__ = [
    "Direction", "PROXIES", "Proxy", "get_proxy", "list_proxies", "register_proxy",
]
