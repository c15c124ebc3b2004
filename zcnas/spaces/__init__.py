"""Search spaces. Built-ins: ``nb201``, ``darts``, ``nb301``, ``darts_swap``, ``tnb101_micro``,
``tnb101_macro``. Plugins: entry-point group ``zcnas.spaces``."""

from zcnas.spaces import _darts  # noqa: F401  (registers darts, nb301, darts_swap)
from zcnas.spaces import _nb201  # noqa: F401  (registers nb201)
from zcnas.spaces import _tnb101  # noqa: F401  (registers tnb101_micro, tnb101_macro)
from zcnas.spaces._base import Arch
from zcnas.spaces._base import SearchSpace
from zcnas.spaces._nb201 import NB201Space
from zcnas.spaces._registry import SPACES
from zcnas.spaces._registry import get_space
from zcnas.spaces._registry import list_spaces
from zcnas.spaces._registry import register_space


__all__ = [
    "Arch", "NB201Space", "SPACES", "SearchSpace", "get_space", "list_spaces", "register_space",
]
