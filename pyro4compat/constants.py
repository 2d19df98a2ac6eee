"""Fixed values of the Pyro4 4.82 protocol and its reserved object names."""

VERSION = "4.82"
DAEMON_NAME = "Pyro.Daemon"
NAMESERVER_NAME = "Pyro.NameServer"
FLAME_NAME = "Pyro.Flame"
PROTOCOL_VERSION = 48
