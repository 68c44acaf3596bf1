"""Plain data across a process boundary: a type-tagged JSON encoding of builtin values (stdlib only).

Used on the host and, as source, inside the sandbox programs (the candidate process and the trusted harness), so
a value that crosses between them is rebuilt from tags as a genuine builtin: a tuple stays a tuple, ``True`` stays
a bool, floats keep every bit (NaN and infinities included), and an object of any other type, or of a subclass of
a builtin, cannot be encoded at all. Nothing the submission defines can reach the harness.

Tags: ``N`` None, ``b`` bool, ``i`` int (hex text: no digit limit), ``f`` float (``float.hex``), ``c`` complex,
``s`` str, ``y`` bytes (latin-1 text), ``l`` list, ``t`` tuple, ``S`` set, ``F`` frozenset, ``d`` dict (key/value
pairs).
"""

MAX_DEPTH = 64


class NotPlainData(ValueError):
    """The value holds something other than builtin plain data (or is nested too deeply)."""


def encode(value, depth=0):
    """The tagged form of `value` (lists and strings only, ready for ``json.dumps``)."""
    if depth > MAX_DEPTH:
        raise NotPlainData("nested more than %d levels deep" % MAX_DEPTH)
    kind = type(value)
    if value is None:
        return ["N"]
    if kind is bool:
        return ["b", 1 if value else 0]
    if kind is int:
        return ["i", hex(value)]
    if kind is float:
        return ["f", float.hex(value)]
    if kind is complex:
        return ["c", float.hex(value.real), float.hex(value.imag)]
    if kind is str:
        return ["s", str.__str__(value)]
    if kind is bytes:
        return ["y", bytes.decode(value, "latin-1")]
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[kind]
        return [tag, [encode(v, depth + 1) for v in kind.__iter__(value)]]
    if kind is dict:
        return ["d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]]
    raise NotPlainData("a %s is not plain data" % kind.__name__)


def _float(text):
    if type(text) is not str:
        raise NotPlainData("malformed float")
    return float.fromhex(text)


def decode(data, depth=0):
    """The builtin value of a tagged form; raises NotPlainData on anything malformed."""
    if depth > MAX_DEPTH:
        raise NotPlainData("nested more than %d levels deep" % MAX_DEPTH)
    if type(data) is not list or not data or type(data[0]) is not str:
        raise NotPlainData("malformed value")
    tag, n = data[0], len(data)
    try:
        if tag == "N" and n == 1:
            return None
        if tag == "b" and n == 2 and data[1] in (0, 1) and type(data[1]) is int:
            return data[1] == 1
        if tag == "i" and n == 2 and type(data[1]) is str:
            return int(data[1], 16)
        if tag == "f" and n == 2:
            return _float(data[1])
        if tag == "c" and n == 3:
            return complex(_float(data[1]), _float(data[2]))
        if tag == "s" and n == 2 and type(data[1]) is str:
            return data[1]
        if tag == "y" and n == 2 and type(data[1]) is str:
            return data[1].encode("latin-1")
        if tag in ("l", "t", "S", "F") and n == 2 and type(data[1]) is list:
            items = [decode(v, depth + 1) for v in data[1]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag == "d" and n == 2 and type(data[1]) is list:
            out = {}
            for pair in data[1]:
                if type(pair) is not list or len(pair) != 2:
                    raise NotPlainData("malformed dict item")
                out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
            return out
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:  # unhashable key, bad hex, ...
        raise NotPlainData("malformed %r value (%s)" % (tag, type(exc).__name__)) from None
    raise NotPlainData("unknown tag %r" % (tag,))
