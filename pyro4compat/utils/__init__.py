"""``Pyro4.utils``: optional tools (Flame and the HTTP gateway); import each one explicitly."""
