"""``Pyro4.test``: test helpers that ship with the package (the echo server)."""
