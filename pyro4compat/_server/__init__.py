"""Server side of pyro4compat: daemon, request dispatch, exposure rules, instancing."""
