"""``python -m pyro4compat.configuration``: print the active configuration.

A package with a ``__main__`` (rather than a plain module) because ``import pyro4compat``
already imports the configuration; running an imported module with ``-m`` makes Python warn.
"""

from . import main

main()
