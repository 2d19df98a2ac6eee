"""``Pyro4.nsc``: the name server control tool (``python -m pyro4compat.nsc command [args]``).

Every command is one row of :data:`COMMANDS`: how many arguments it takes, the message when
the count is wrong (printed on stderr with exit status 1, as Pyro4's ``SystemExit`` does), and
the function that talks to the name server. Errors from the name server itself are printed as
``Error: <Type> - <message>`` and the tool still exits with status 0, as Pyro4's does.
"""

from __future__ import annotations, print_function

import optparse
import os
import sys
import warnings
from typing import Any, Callable, Dict, List, NamedTuple, Optional

from . import errors, naming

# Pyro4's module has no __all__, so its star-import also yields what it imported: the second line.
__all__ = ["handleCommand", "main",
           "errors", "naming", "os", "print_function", "sys", "warnings"]

USAGE = ("usage: %prog [options] command [arguments]\nCommands: "
         "register remove removematching lookup list listmatching\n          listmeta_all listmeta_any setmeta ping")
REMOVE_PROMPT = "Potentially removing lots of items from the Name server. Are you sure (y/n)?"
UNLIMITED = sys.maxsize


def _print_list(result: Dict[str, Any], title: str = "") -> None:
    print("--------START LIST %s" % title)
    for name, (uri, metadata) in sorted(result.items()):
        print("%s --> %s" % (name, uri))
        if metadata:
            print("    metadata:", metadata)
    print("--------END LIST %s" % title)


# --- the commands: each gets the name server proxy and the command's own arguments ----------------

def _ping(nameserver: Any, args: List[str]) -> None:
    nameserver.ping()
    print("Name server ping ok.")


def _list(nameserver: Any, args: List[str]) -> None:
    if not args:
        _print_list(nameserver.list(return_metadata=True))
    else:
        _print_list(nameserver.list(prefix=args[0], return_metadata=True), "- prefix '%s'" % args[0])


def _listmatching(nameserver: Any, args: List[str]) -> None:
    _print_list(nameserver.list(regex=args[0], return_metadata=True), "- regex '%s'" % args[0])


def _lookup(nameserver: Any, args: List[str]) -> None:
    uri, metadata = nameserver.lookup(args[0], return_metadata=True)
    print(uri)
    if metadata:
        print("metadata:", metadata)


def _register(nameserver: Any, args: List[str]) -> None:
    nameserver.register(args[0], args[1], safe=True)
    print("Registered %s" % args[0])


def _remove(nameserver: Any, args: List[str]) -> None:
    if nameserver.remove(args[0]) > 0:
        print("Removed %s" % args[0])
    else:
        print("Nothing removed")


def _removematching(nameserver: Any, args: List[str]) -> None:
    answer = input(REMOVE_PROMPT).strip()
    if answer in ("y", "Y"):
        count = nameserver.remove(regex=args[0])
        print("%d items removed." % count)


def _setmeta(nameserver: Any, args: List[str]) -> None:
    metadata = set(args[1:])
    nameserver.set_metadata(args[0], metadata)
    print("Metadata updated" if metadata else "Metadata cleared")


def _listmeta_all(nameserver: Any, args: List[str]) -> None:
    _print_list(nameserver.list(metadata_all=set(args), return_metadata=True), " - searched by metadata")


def _listmeta_any(nameserver: Any, args: List[str]) -> None:
    _print_list(nameserver.list(metadata_any=set(args), return_metadata=True), " - searched by metadata")


class Command(NamedTuple):
    run: Callable[[Any, List[str]], None]
    min_args: int
    max_args: int
    usage_error: str


ONE_PATTERN = "requires one argument: pattern"
ONE_NAME = "requires one argument: name"
SOME_TAGS = "requires at least one metadata tag argument"

COMMANDS: Dict[str, Command] = {
    "ping": Command(_ping, 0, UNLIMITED, ""),
    "list": Command(_list, 0, UNLIMITED, ""),
    "listmatching": Command(_listmatching, 1, 1, ONE_PATTERN),
    "listmeta_all": Command(_listmeta_all, 1, UNLIMITED, SOME_TAGS),
    "listmeta_any": Command(_listmeta_any, 1, UNLIMITED, SOME_TAGS),
    "lookup": Command(_lookup, 1, 1, ONE_NAME),
    "register": Command(_register, 2, 2, "requires two arguments: name uri"),
    "remove": Command(_remove, 1, 1, ONE_NAME),
    "removematching": Command(_removematching, 1, 1, ONE_PATTERN),
    "setmeta": Command(_setmeta, 1, UNLIMITED, "requires at least 2 arguments: uri and zero or more meta tags"),
}


def handleCommand(nameserver: Any, options: Any, args: List[str]) -> None:
    """Run ``args[0]`` with ``args[1:]`` against ``nameserver``; print its result or the error."""
    try:
        command = COMMANDS[args[0]]
        if not command.min_args <= len(args) - 1 <= command.max_args:
            raise SystemExit(command.usage_error)
        command.run(nameserver, args[1:])
    except Exception as exc:  # every failure of the command is reported, as Pyro4 does
        print("Error: %s - %s" % (type(exc).__name__, exc))


def _parser() -> optparse.OptionParser:
    parser = optparse.OptionParser(usage=USAGE)
    parser.add_option("-n", "--host", dest="host", help="hostname of the NS")
    parser.add_option("-p", "--port", dest="port", type="int",
                      help="port of the NS (or bc-port if host isn't specified)")
    parser.add_option("-u", "--unixsocket", help="Unix domain socket name of the NS")
    parser.add_option("-k", "--key", help="the HMAC key to use (deprecated)")
    parser.add_option("-v", "--verbose", action="store_true", dest="verbose", help="verbose output")
    return parser


def main(args: Optional[List[str]] = None) -> None:
    """``python -m pyro4compat.nsc``: locate the name server and run one command against it."""
    parser = _parser()
    options, args = parser.parse_args(args)
    options.key = naming._tool_hmac_key(options.key)
    if not args or args[0] not in COMMANDS:
        parser.error("invalid or missing command")
    if options.verbose:
        print("Locating name server...")
    if options.unixsocket:
        options.host = "./u:" + options.unixsocket
    try:
        nameserver = naming.locateNS(options.host, options.port, hmac_key=options.key)
    except errors.PyroError as exc:
        print("Error: %s" % exc)
        return
    if options.verbose:
        print("Name server found: %s" % nameserver._pyroUri)
    try:
        handleCommand(nameserver, options, args)
    finally:
        nameserver._pyroRelease()
    if options.verbose:
        print("Done.")


if __name__ == "__main__":
    main()
