"""Our own release number (Pyro4's, 4.82, is what ``pyro4compat.__version__`` reports)."""

__version__ = "0.1.0"
