"""An event's properties: a small JSON object, bounded, stored with its numbers exactly as sent.

Request bodies are decoded with numbers as `Decimal` (walletd never reads money through float),
and `json.dumps` cannot write a Decimal, so the properties are written here: a Decimal is written
as its own text ("12.50" stays "12.50", and a message shows it so) and read back as a Decimal.
"""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from typing import Any

from walletd.errors import ValidationError

MAX_BYTES = 8 * 1024
MAX_DEPTH = 5
MAX_STRING = 500
FIELD = "properties"


def _refuse(message: str) -> ValidationError:
    return ValidationError(f"properties: {message}", field=FIELD)


def _check_string(text: str) -> None:
    if len(text) > MAX_STRING:
        raise _refuse(f"strings (keys too) must be at most {MAX_STRING} characters")
    # A lone surrogate cannot be written as UTF-8, so no database could store it.
    if any(unicodedata.category(char) == "Cs" for char in text):
        raise _refuse("strings must not contain lone surrogates")


def check_properties(value: object) -> dict[str, Any]:
    """The properties when they are a JSON object within the bounds, else a 422 on the field."""
    if not isinstance(value, dict):
        raise _refuse("must be a JSON object")
    # Iterative: a deep body must not reach the recursion limit before it is refused.
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise _refuse(f"objects and arrays may nest at most {MAX_DEPTH} levels deep")
            if isinstance(node, dict):
                for key, child in node.items():
                    _check_string(str(key))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in node)
        elif isinstance(node, str):
            _check_string(node)
        elif isinstance(node, Decimal):
            if not node.is_finite():
                raise _refuse("numbers must be finite")
        elif node is not None and not isinstance(node, bool | int):
            raise _refuse("values must be JSON strings, numbers, booleans, null, arrays or objects")
    if len(dump_properties(value).encode()) > MAX_BYTES:
        raise _refuse(f"must be at most {MAX_BYTES} bytes as JSON")
    return value


def dump_properties(value: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces) with Decimals written exactly."""
    parts: list[str] = []
    # An explicit stack of pending pieces, so nesting never recurses.
    stack: list[object] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, _Literal):
            parts.append(node.text)
        elif isinstance(node, dict):
            items = sorted((str(k), v) for k, v in node.items())
            pending: list[object] = [_Literal("{")]
            for i, (key, child) in enumerate(items):
                pending.append(
                    _Literal(("," if i else "") + json.dumps(key, ensure_ascii=False) + ":")
                )
                pending.append(child)
            pending.append(_Literal("}"))
            stack.extend(reversed(pending))
        elif isinstance(node, list):
            pending = [_Literal("[")]
            for i, child in enumerate(node):
                if i:
                    pending.append(_Literal(","))
                pending.append(child)
            pending.append(_Literal("]"))
            stack.extend(reversed(pending))
        elif isinstance(node, Decimal):
            parts.append(str(node))
        else:
            parts.append(json.dumps(node, ensure_ascii=False))
    return "".join(parts)


class _Literal:
    """Text already written as JSON, waiting its turn on the writer's stack."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def load_properties(text: str | None) -> dict[str, Any]:
    """Stored properties back as Python values (numbers with a point or exponent as Decimal)."""
    if not text:
        return {}
    try:
        value = json.loads(text, parse_float=Decimal)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
