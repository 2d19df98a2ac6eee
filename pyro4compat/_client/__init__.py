"""Client side: proxies, remote method calls, name resolution."""
