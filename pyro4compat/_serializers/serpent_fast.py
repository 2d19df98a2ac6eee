"""A fast path for serpent text made of builtin literals, byte for byte what serpent writes and reads.

Why: serpent encodes through a generic recursive class and decodes through ``compile`` plus
``ast.literal_eval``'s Python walk; for the small calls and big ``bytes`` values that make up
most of Pyro's traffic that is the largest cost of a call. This module handles only exact
builtin types and the text shapes serpent 1.43 writes for them; everything else is left to
serpent itself, so the wire stays identical and nothing here needs to know about class hooks.

Theory of operation
-------------------
Encoding (``dumps_fast``) mirrors ``serpent.Serializer`` with ``indent=False``:

========================== =====================================================================
exact type                 text
========================== =====================================================================
str, int, bool, None       ``repr()``
float                      ``repr()``; +/-inf as ``1e30000``/``-1e30000``; NaN as serpent's dict
bytes/bytearray/memoryview ``{'data': '<base64>', 'encoding': 'base64'}`` (``repr`` of that dict)
tuple                      ``(a,b)``, ``(a,)``, ``()``
list                       ``[a,b]``
dict                       ``{k:v,...}`` in insertion order; keys str/int/float/bool only
set/frozenset              ``{a,b}`` in iteration order, elements str/int/float/bool/tuple/bytes;
                           empty as ``()``
========================== =====================================================================

Any other type (subclasses included: they may have serpent class hooks) makes ``dumps_fast``
return None, and so does nesting deeper than serpent's own limit allows, a cycle, or any error:
the caller then runs serpent, which produces the same text or raises its own error.
Large bytes values are kept as base64 *bytes* segments (large str values as their encoded repr)
and joined at the end, so a 10 MB payload is copied once instead of four times.

Decoding (``loads_fast``) accepts only the header line ``# serpent utf-8 python3.2`` followed by
one value in a strict subset of Python literal syntax: single- or double-quoted strings with the
escapes ``repr`` writes, decimal ints and floats with an optional leading ``-``, ``True``/
``False``/``None``, tuples, lists, dicts and sets, with spaces or newlines between tokens (not
at the end: ``1\n `` is an IndentationError). A
single regular expression cuts the text into tokens (a catch-all alternative turns any other
character into a one-character token the parser refuses), then a recursive-descent parser of
bounded depth builds the value. Whatever falls outside the subset raises ``Unsupported`` and the
caller decodes with serpent: the fast path never accepts text that serpent rejects, and never
returns a value different from serpent's. Huge texts without escapes are split on quotes
instead of being run through the regular expression character by character.
"""

from __future__ import annotations

import base64
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["Unsupported", "dumps_fast", "dumps_call_fast", "loads_fast", "loads_fast_tagged",
           "HEADER", "MAX_DEPTH"]

HEADER = "# serpent utf-8 python3.2\n"
MAX_DEPTH = 100  # container nesting handled here; deeper values go to serpent
_HEADER_LEN = len(HEADER)
_HEADER_BYTES = HEADER.encode("ascii")
_BIG_BYTES = 65536  # bytes (and str) values at least this long travel as separate segments
_SEGMENT_MARK = "\x00"  # never in our own output otherwise: repr() escapes NUL
_BIG_TEXT = 65536  # texts this long try the split-on-quotes tokenizer


class Unsupported(Exception):
    """The value or text is outside the fast subset: use serpent itself."""


# --------------------------------------------------------------------------------------------
# encoding: each encoder returns the text of one value; ``left`` is how many more container
# levels serpent would still accept, ``big`` collects the large segments (see _join_segments)

_Encoder = Callable[[Any, int, List[bytes]], str]
_INF = float("inf")
_NAN_TEXT = "{'__class__':'float','value':'nan'}"
_PLAIN_REPR_TYPES = frozenset((int, bool, type(None)))  # repr() is serpent's text (and str's, if small)
_KEY_TYPES = frozenset((str, int, float, bool, tuple))  # serpent accepts these as keys
_SET_ITEM_TYPES = frozenset((str, int, float, bool, tuple, bytes))  # and these in sets
# bytes that repr() of an ASCII str copies unchanged (no quote, backslash or control char)
_REPR_VERBATIM = bytes(c for c in range(0x20, 0x7F) if c not in b"'\\")


def _enc_repr(obj: Any, left: int, big: List[bytes]) -> str:
    return repr(obj)


def _enc_str(obj: str, left: int, big: List[bytes]) -> str:
    if len(obj) < _BIG_BYTES:
        return repr(obj)
    if obj.isascii():
        raw = obj.encode("ascii")
        if not raw.translate(None, _REPR_VERBATIM):  # repr() would just add quotes
            big.append(raw)
            return "'" + _SEGMENT_MARK + "'"
    big.append(repr(obj).encode("utf-8"))
    return _SEGMENT_MARK


def _enc_float(obj: float, left: int, big: List[bytes]) -> str:
    if obj != obj:
        return _NAN_TEXT
    if obj == _INF:
        return "1e30000"
    if obj == -_INF:
        return "-1e30000"
    return repr(obj)


def _enc_bytes(obj: Any, left: int, big: List[bytes]) -> str:
    encoded = base64.b64encode(obj)
    if len(encoded) < _BIG_BYTES:
        return "{'data': '" + encoded.decode("ascii") + "', 'encoding': 'base64'}"
    big.append(encoded)
    return "{'data': '" + _SEGMENT_MARK + "', 'encoding': 'base64'}"


def _enc(obj: Any, left: int, big: List[bytes]) -> str:
    encoder = _ENCODERS.get(type(obj))
    if encoder is None:
        raise Unsupported(type(obj).__name__)
    return encoder(obj, left, big)


def _enc_items(items: Any, left: int, big: List[bytes]) -> List[str]:
    if left <= 0:
        raise Unsupported("nested too deep")
    left -= 1
    return [repr(item) if type(item) in _PLAIN_REPR_TYPES or type(item) is str and len(item) < _BIG_BYTES
            else _enc(item, left, big) for item in items]


def _enc_tuple(obj: tuple, left: int, big: List[bytes]) -> str:
    if len(obj) == 1:
        return "(" + _enc_items(obj, left, big)[0] + ",)"
    return "(" + ",".join(_enc_items(obj, left, big)) + ")"


def _enc_list(obj: list, left: int, big: List[bytes]) -> str:
    return "[" + ",".join(_enc_items(obj, left, big)) + "]"


def _enc_dict(obj: dict, left: int, big: List[bytes]) -> str:
    if left <= 0:
        raise Unsupported("nested too deep")
    left -= 1
    parts = []
    append = parts.append
    for key, value in obj.items():
        kind = type(key)
        if kind is str and len(key) < _BIG_BYTES:
            key_text = repr(key)
        elif kind in _KEY_TYPES:
            key_text = _enc(key, left, big)
        else:
            raise Unsupported("dict key type")
        kind = type(value)
        if kind in _PLAIN_REPR_TYPES or kind is str and len(value) < _BIG_BYTES:
            append(f"{key_text}:{value!r}")
        elif kind is float and value - value == 0.0:  # finite
            append(f"{key_text}:{value!r}")
        else:
            append(f"{key_text}:{_enc(value, left, big)}")
    return "{" + ",".join(parts) + "}"


def _enc_set(obj: Any, left: int, big: List[bytes]) -> str:
    if not obj:
        return "()"
    for item in obj:
        if type(item) not in _SET_ITEM_TYPES:
            raise Unsupported("set element type")
    return "{" + ",".join(_enc_items(obj, left, big)) + "}"


_ENCODERS: Dict[type, _Encoder] = {
    str: _enc_str,
    int: _enc_repr,
    bool: _enc_repr,
    type(None): _enc_repr,
    float: _enc_float,
    bytes: _enc_bytes,
    bytearray: _enc_bytes,
    memoryview: _enc_bytes,
    tuple: _enc_tuple,
    list: _enc_list,
    dict: _enc_dict,
    set: _enc_set,
    frozenset: _enc_set,
}


def _join_segments(text: str, big: List[bytes]) -> bytes:
    """Text with one NUL per large segment -> bytes, each segment copied once."""
    pieces = text.split(_SEGMENT_MARK)
    chunks: List[bytes] = []
    for piece, segment in zip(pieces, big):
        chunks.append(piece.encode("utf-8"))
        chunks.append(segment)
    chunks.append(pieces[-1].encode("utf-8"))
    return b"".join(chunks)


def dumps_fast(obj: Any) -> Optional[bytes]:
    """``serpent.dumps(obj, module_in_classname=True)`` for builtin-only values, or None.

    None means "not handled here" (a non-builtin type, too deep, a cycle, an error): call
    serpent, which gives the same bytes for everything this function does handle.
    """
    # serpent refuses levels above min(recursionlimit // 5, 1000); stay at or below that
    left = min(MAX_DEPTH, sys.getrecursionlimit() // 5)
    big: List[bytes] = []
    try:
        text = _enc(obj, left, big)
    except Exception:  # Unsupported, RecursionError, int too long for repr, released memoryview...
        return None
    if big:
        return _join_segments(HEADER + text, big)
    return (HEADER + text).encode("utf-8")


def dumps_call_fast(obj: Any, method: Any, vargs: Any, kwargs: Any) -> Optional[bytes]:
    """``dumps_fast((obj, method, vargs, kwargs))``, with the call tuple's frame written inline."""
    if type(obj) is not str or type(method) is not str or len(obj) >= _BIG_BYTES or len(method) >= _BIG_BYTES:
        return dumps_fast((obj, method, vargs, kwargs))
    left = min(MAX_DEPTH, sys.getrecursionlimit() // 5) - 1  # the call tuple is one level
    big: List[bytes] = []
    try:
        text = f"{HEADER}({obj!r},{method!r},{_enc(vargs, left, big)},{_enc(kwargs, left, big)})"
    except Exception:  # see dumps_fast
        return None
    if big:
        return _join_segments(text, big)
    return text.encode("utf-8")


# --------------------------------------------------------------------------------------------
# decoding: a token list, then recursive descent; each parser gets the token that starts its
# value and the next-token function, and returns the value

_STRINGS = (r"|'[^'\\\n\r]*(?:\\[^\n\r][^'\\\n\r]*)*'"
            r'|"[^"\\\n\r]*(?:\\[^\n\r][^"\\\n\r]*)*"')
_SCALARS = r"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|True|False|None|."
_TOKENS = re.compile(r"([][(){},:]" + _STRINGS + _SCALARS + ")[ \n]*", re.S)
_CODE_TOKENS = re.compile(r"([][(){},:]" + _SCALARS + ")[ ]*", re.S)  # text between quotes
_SPLIT_STRING = "\x00"  # in split mode: "the next token is a string body"; NUL is refused in input
_DIGITS = frozenset("0123456789")

_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t",
            "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)
_CONSTANTS = {"True": True, "False": False, "None": None}
_Next = Callable[[], str]


def _escape_value(match: "re.Match[str]") -> str:
    code = match.group(1)
    if len(code) == 1:
        try:
            return _ESCAPES[code]
        except KeyError:  # octal, \N{...}, unknown escapes: leave them to Python's own parser
            raise Unsupported("escape") from None
    point = int(code[1:], 16)
    if point > 0x10FFFF:  # Python refuses these
        raise Unsupported("escape")
    return chr(point)


def _string(tok: str, nxt: _Next, depth: int) -> str:
    if len(tok) < 2:
        raise Unsupported("unterminated string")
    body = tok[1:-1]
    if "\\" in body:
        return _ESCAPE.sub(_escape_value, body)
    return body


def _number(tok: str, nxt: _Next, depth: int) -> Any:
    if tok == "-":
        raise Unsupported("token")
    if "." in tok or "e" in tok or "E" in tok:
        return float(tok)
    return int(tok)  # ValueError past sys.get_int_max_str_digits(), as Python's parser


def _constant(tok: str, nxt: _Next, depth: int) -> Any:
    try:
        return _CONSTANTS[tok]
    except KeyError:
        raise Unsupported("token") from None


def _split_string(tok: str, nxt: _Next, depth: int) -> str:
    return nxt()


def _value(tok: str, nxt: _Next, depth: int) -> Any:
    parse = _PARSERS.get(tok[0])
    if parse is None:
        raise Unsupported("token")
    return parse(tok, nxt, depth)


def _items(close: str, nxt: _Next, depth: int) -> Tuple[List[Any], bool]:
    """Comma-separated values up to ``close``; also says whether a trailing comma ended them."""
    if depth > MAX_DEPTH:
        raise Unsupported("nested too deep")
    items: List[Any] = []
    append = items.append
    tok = nxt()
    if tok == close:
        return items, False
    while True:
        first = tok[0]
        if first == "'" and len(tok) > 1 and "\\" not in tok:
            append(tok[1:-1])
        elif first in _DIGITS and "." not in tok and "e" not in tok and "E" not in tok:
            append(int(tok))
        else:
            append(_value(tok, nxt, depth))
        tok = nxt()
        if tok == ",":
            tok = nxt()
            if tok == close:
                return items, True
        elif tok == close:
            return items, False
        else:
            raise Unsupported("expected ',' or " + close)


def _tuple(tok: str, nxt: _Next, depth: int) -> Any:
    items, trailing_comma = _items(")", nxt, depth + 1)
    if len(items) == 1 and not trailing_comma:
        return items[0]  # "(x)" is just x in Python
    return tuple(items)


def _list(tok: str, nxt: _Next, depth: int) -> Any:
    return _items("]", nxt, depth + 1)[0]


def _brace(tok: str, nxt: _Next, depth: int) -> Any:
    depth += 1
    if depth > MAX_DEPTH:
        raise Unsupported("nested too deep")
    tok = nxt()
    if tok == "}":
        return {}
    key = _value(tok, nxt, depth)
    tok = nxt()
    if tok != ":":
        return _set_rest(key, tok, nxt, depth)
    result = {}
    while True:
        tok = nxt()
        if tok[0] == "'" and len(tok) > 1 and "\\" not in tok:
            result[key] = tok[1:-1]
        else:
            result[key] = _value(tok, nxt, depth)  # TypeError for unhashable keys, as Python
        tok = nxt()
        if tok == ",":
            tok = nxt()
            if tok == "}":
                return result
        elif tok == "}":
            return result
        else:
            raise Unsupported("expected ',' or '}'")
        if tok[0] == "'" and len(tok) > 1 and "\\" not in tok:
            key = tok[1:-1]
        else:
            key = _value(tok, nxt, depth)
        if nxt() != ":":
            raise Unsupported("expected ':'")


def _set_rest(first: Any, tok: str, nxt: _Next, depth: int) -> set:
    items = [first]
    while True:
        if tok == "}":
            return set(items)
        if tok != ",":
            raise Unsupported("expected ',' or '}'")
        tok = nxt()
        if tok == "}":
            return set(items)
        items.append(_value(tok, nxt, depth))
        tok = nxt()


_PARSERS: Dict[str, Callable[[str, _Next, int], Any]] = {
    "'": _string, '"': _string, "(": _tuple, "[": _list, "{": _brace, "-": _number,
    "T": _constant, "F": _constant, "N": _constant, _SPLIT_STRING: _split_string,
}
_PARSERS.update((digit, _number) for digit in _DIGITS)


def _split_tokens(data: Any) -> Optional[Tuple[List[str], bool]]:
    """Tokens of a large text whose strings hold no escapes, cut at its quotes; None if unsuitable.

    Each string body is decoded straight from the input, so a 10 MB base64 body is copied once.
    Cutting UTF-8 at ASCII quotes never splits a character, so decoding piece by piece accepts
    exactly what decoding the whole text does.
    """
    if type(data) is not bytes or not data.startswith(_HEADER_BYTES) or data.endswith(b" "):
        return None
    if b"\\" in data or b"\r" in data or b'"' in data or b"\x00" in data or data.find(b"\n", _HEADER_LEN) >= 0:
        return None
    view = memoryview(data)
    find = data.find
    max_strings = len(data) >> 12  # many small strings: one regular expression pass is faster
    tokens: List[str] = []
    strings: List[str] = []
    pos = _HEADER_LEN
    while True:
        start = find(b"'", pos)
        if start < 0:
            tokens += _CODE_TOKENS.findall(str(view[pos:], "utf-8"))
            return tokens, "__class__" in strings
        end = find(b"'", start + 1)
        if end < 0 or len(strings) >= max_strings:
            return None
        tokens += _CODE_TOKENS.findall(str(view[pos:start], "utf-8"))
        body = str(view[start + 1:end], "utf-8")
        strings.append(body)
        tokens.append(_SPLIT_STRING)
        tokens.append(body)
        pos = end + 1


def _tokens(data: Any) -> Tuple[List[str], bool]:
    """The tokens after the header, and whether a ``"__class__"`` key may be among them."""
    if len(data) >= _BIG_TEXT:
        split = _split_tokens(data)
        if split is not None:
            return split
    text = str(data, "utf-8")
    if not text.startswith(HEADER) or "\x00" in text or text[-1] in " \n":
        raise Unsupported("header, NUL or trailing blank")  # "1\n " is an IndentationError
    return _TOKENS.findall(text, _HEADER_LEN), "__class__" in text or "\\" in text


def loads_fast_tagged(data: Any) -> Tuple[Any, bool]:
    """Like :func:`loads_fast`, plus whether some dict may have a ``"__class__"`` key.

    When the flag is False no dict has that key, so ``recreate_classes`` would only copy the
    value: the caller may skip it.
    """
    try:
        tokens, class_dicts = _tokens(data)
        rest = iter(tokens)
        nxt = rest.__next__
        value = _value(nxt(), nxt, 0)
    except (StopIteration, ValueError, TypeError, RecursionError) as exc:
        # text ends inside a value, bad UTF-8, int too long, unhashable key, not bytes...
        raise Unsupported(type(exc).__name__) from None
    for _ in rest:
        raise Unsupported("text after the value")
    return value, class_dicts


def loads_fast(data: Any) -> Any:
    """``serpent.loads(data)`` for text in the fast subset; raises :class:`Unsupported` otherwise."""
    return loads_fast_tagged(data)[0]
