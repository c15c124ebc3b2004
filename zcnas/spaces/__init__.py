"""Search spaces. Built-ins: ``nb201``, ``nb101``, ``nats_sss``, ``darts``, ``nb301``,
``darts_swap``, ``tnb101_micro``, ``tnb101_macro``. Plugins: entry-point group ``zcnas.spaces``."""

from zcnas.spaces import _darts  # noqa: F401  (registers darts, nb301, darts_swap)
from zcnas.spaces import _nats_sss  # noqa: F401  (registers nats_sss)
from zcnas.spaces import _nb101  # noqa: F401  (registers nb101)
from zcnas.spaces import _nb201  # noqa: F401  (registers nb201)
from zcnas.spaces import _tnb101  # noqa: F401  (registers tnb101_micro, tnb101_macro)
from zcnas.spaces._base import Arch
from zcnas.spaces._base import SearchSpace
from zcnas.spaces._darts import DartsSpace
from zcnas.spaces._darts import DartsSwapSpace
from zcnas.spaces._darts import NB301Space
from zcnas.spaces._model import DefineByRunSpace
from zcnas.spaces._model import ModelSpace
from zcnas.spaces._model import reinitialised
from zcnas.spaces._module import module_fingerprint
from zcnas.spaces._nats_sss import NATSSizeSpace
from zcnas.spaces._nb101 import NB101Space
from zcnas.spaces._nb101 import module_hash as nb101_module_hash
from zcnas.spaces._nb101 import parse_spec as nb101_parse_spec
from zcnas.spaces._nb101 import prune as nb101_prune
from zcnas.spaces._nb101 import remember_specs as nb101_remember_specs
from zcnas.spaces._nb101 import spec_string as nb101_spec_string
from zcnas.spaces._nb201 import NB201Space
from zcnas.spaces._registry import SPACES
from zcnas.spaces._registry import get_space
from zcnas.spaces._registry import list_spaces
from zcnas.spaces._registry import register_space


#: the space every command and function uses when none is named
DEFAULT_SPACE = "nb201"

__all__ = [
    "Arch", "DEFAULT_SPACE", "DartsSpace", "DartsSwapSpace", "DefineByRunSpace", "ModelSpace",
    "NATSSizeSpace", "NB101Space", "NB201Space", "NB301Space", "SPACES", "SearchSpace",
    "get_space", "list_spaces", "module_fingerprint", "nb101_module_hash", "nb101_parse_spec",
    "nb101_prune", "nb101_remember_specs", "nb101_spec_string", "register_space", "reinitialised",
]
