"""Event automation texts: the member placeholders plus `{event.<path>}` into the trigger event.

`{event.items.0.name}` reads the first item's name of the event's `items` array. Like every
message template in walletd (see walletd.campaigns.templates) a text is filled as data, never run
through `str.format`; a path that leads nowhere, or to an array or object, renders as "".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from walletd.campaigns.templates import (
    MAX_MESSAGE_LENGTH,
    MEMBER_PLACEHOLDERS,
    check_message,
    render,
)
from walletd.errors import ValidationError
from walletd.events.properties import MAX_DEPTH

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
# A property path: up to the properties' nesting depth, each step a key or an array index.
_SEGMENT = r"[A-Za-z0-9_\-]{1,64}"
EVENT_PATH = re.compile(rf"event(?:\.{_SEGMENT}){{1,{MAX_DEPTH}}}")


def _is_placeholder(inner: str) -> bool:
    return inner in MEMBER_PLACEHOLDERS or EVENT_PATH.fullmatch(inner) is not None


def check_event_template(template: object) -> str:
    """A message text whose placeholders are member ones or event property paths."""
    text = check_message(template)
    for match in _TOKEN.finditer(text):
        if match.group(0) in ("{{", "}}"):
            continue
        inner = match.group(1)
        if inner is None or not _is_placeholder(inner):
            shown = "a single { or } (write {{ or }} for a brace)"
            if inner is not None:
                shown = f"the unknown placeholder {{{inner[:40]}}}"
            raise ValidationError(
                f"the message has {shown}; the placeholders here are {{name}}, {{points}}, "
                "{tier} and {event.<property>} (such as {event.items.0.name})",
                field="message",
            )
    return text


def _scalar_text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return str(value)
    # Control characters never reach a card (Postgres refuses NUL; Wallet shows the rest
    # as boxes); line breaks and tabs are kept, as a message may have them.
    return "".join(
        char
        for char in str(value)
        if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cs")
    )


def property_at(properties: object, path: str) -> str:
    """The text of the value at a dotted path (`items.0.name`), "" when there is none."""
    node: Any = properties
    for step in path.split("."):
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and step.isdecimal() and len(step) <= 6:
            index = int(step)
            node = node[index] if index < len(node) else None
        else:
            return ""
    return _scalar_text(node)


def render_event_message(
    template: str,
    member_values: Mapping[str, str],
    properties: object,
    limit: int = MAX_MESSAGE_LENGTH,
) -> str:
    """The text with its placeholders filled, at most `limit` characters; total on any input."""

    def resolve(inner: str) -> str | None:
        if EVENT_PATH.fullmatch(inner):
            return property_at(properties, inner[len("event.") :])
        return None

    return render(template, member_values, limit, resolve)
