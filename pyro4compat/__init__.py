"""pyro4compat: Pyro4 4.82's API and wire protocol, maintained.

``import pyro4compat as Pyro4`` gives the names ``import Pyro4`` gives; call
:func:`install_as_pyro4` to make ``import Pyro4`` itself resolve to this package.
"""

from ._logsetup import configure_logging as _configure_logging

_configure_logging()

from . import configuration, constants, errors, message, socketutil  # noqa: E402
from ._install import install_as_pyro4  # noqa: E402
from ._uri import URI  # noqa: E402
from .configuration import config  # noqa: E402
from .constants import VERSION as __version__  # noqa: E402
