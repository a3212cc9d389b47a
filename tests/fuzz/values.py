"""Hostile values and the JSON writer that can carry them.

Hypothesis draws small plans; the expensive parts (a 1 MB string, 1,100 levels of nesting) are
markers here, expanded to bytes only when the request is written, so that drawing stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024

ODD_STRINGS = (
    "",
    " ",
    "  padded  ",
    "\x00",
    "a\x00b",
    "\t\r\n",
    "\u202eevil\u202c",  # right-to-left override
    "\u05e9\u05dc\u05d5\u05dd",  # Hebrew, RTL
    "\u200b\u200d\ufeff",  # zero-width characters and a BOM
    "🔥💥👩‍👩‍👧",  # emoji, a ZWJ sequence
    "𝕏𝔂𝔃",  # outside the BMP
    "e\u0301",  # combining accent
    "\uffff\ufffe",  # noncharacters
    ".",
    "..",
    "../../etc/passwd",
    "a/b",
    "%2F",
    "%00",
    "%zz",
    "*",
    "_all",
    "?",
    "#",
    "\\",
    "'",
    '"',
    "null",
    "true",
    "-1",
    "0",
    "9" * 40,
    "x" * 300,
    "y" * 5000,
    "name with spaces",
    "UPPER",
    "_underscore",
    "<script>",
    "${jndi:ldap://x}",
    "é" * 64,
)

ODD_NUMBERS = (
    0,
    -1,
    -0.0,
    1.5,
    2**31,
    -(2**31) - 1,
    2**63,
    2**64 + 1,
    10**30,
    1e308,
    -1e-300,
)


@dataclass(frozen=True)
class Raw:
    """JSON text written as it is where a value goes: what a JSON library would refuse to produce."""

    kind: str  # see expand()
    size: int = 0

    def expand(self) -> bytes:
        if self.kind == "nest_list":
            return b"[" * self.size + b"1" + b"]" * self.size
        if self.kind == "nest_object":
            return b'{"a":' * self.size + b"1" + b"}" * self.size
        if self.kind == "huge_string":
            return b'"' + b"x" * self.size + b'"'
        if self.kind == "huge_unicode":
            return json.dumps("\u202e💥\x00é" * (self.size // 8), ensure_ascii=False).encode("utf-8", "surrogatepass")
        if self.kind == "huge_array":
            return b"[" + b",".join([b'"v"'] * self.size) + b"]"
        if self.kind == "many_keys":
            return b"{" + b",".join(b'"k%d":1' % i for i in range(self.size)) + b"}"
        if self.kind == "lone_surrogate":
            return b'"\\ud800 and \\udfff"'
        if self.kind == "escaped_nul":
            return b'"before\\u0000after"'
        if self.kind == "big_number":
            return b"1" + b"0" * self.size
        if self.kind == "big_exponent":
            return b"1e99999"
        if self.kind == "tiny_exponent":
            return b"-1.5e-99999"
        if self.kind == "nan":
            return b"NaN"
        if self.kind == "infinity":
            return b"-Infinity"
        raise ValueError(self.kind)


RAW_VALUES = (
    Raw("nest_list", 300),
    Raw("nest_object", 300),
    Raw("nest_list", 1100),
    Raw("nest_object", 1100),
    Raw("nest_list", 100_000),
    Raw("huge_string", MB),
    Raw("huge_unicode", MB),
    Raw("huge_array", 50_000),
    Raw("many_keys", 20_000),
    Raw("lone_surrogate"),
    Raw("escaped_nul"),
    Raw("big_number", 400),
    Raw("big_exponent"),
    Raw("tiny_exponent"),
    Raw("nan"),
    Raw("infinity"),
)


def dumps(value: Any) -> bytes:
    """JSON of a value that may hold Raw markers (and lone surrogates, escaped as JSON allows)."""
    raws: list[Raw] = []

    def marker(obj: Any) -> str:
        if isinstance(obj, Raw):
            raws.append(obj)
            return f"@@raw{len(raws) - 1}@@"
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=marker, ensure_ascii=False).encode("utf-8", "surrogatepass")
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@raw{i}@@"'.encode(), raw.expand(), 1)
    return text
