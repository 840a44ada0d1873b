"""Message texts with `{placeholder}` tokens from a fixed list: filled as data, never formatted.

A brand's admin writes these texts, and every brand shares the server's memory, so they are not
run through `str.format`: its format specs (`{name:>300000000}`) build strings of any size and its
field syntax (`{name.__class__}`) walks attributes. A token is `{identifier}`; `{{` and `}}` are
literal braces; anything else in braces is refused when the text is saved.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping

from walletd.errors import N_, ValidationError
from walletd.models.program import LANGUAGES

# 500 characters: room for a short paragraph on the back of an Apple card and in a Google
# message body, while the lock-screen notification shows only the first lines anyway. The
# rendered text is held to the same cap, so a long name can never make a message grow past it.
MAX_MESSAGE_LENGTH = 500

# Every placeholder there is, and what it stands for (documented in the README and OpenAPI).
PLACEHOLDERS: dict[str, str] = {
    "name": "the member's first name",
    "points": "the member's point balance, such as 1,250",
    "tier": "the member's tier name (empty without tiers)",
    "reward": "the name of the cheapest reward (reward_near)",
    "needed": "the points still needed for that reward (reward_near)",
    "expiring": "the points about to expire (points_expiring)",
    "expiry_date": "the day they expire, as YYYY-MM-DD (points_expiring)",
    "feedback_url": "a signed link rating the member's latest visit (post_purchase)",
}
# What every member has, so a campaign and every automation can use them.
MEMBER_PLACEHOLDERS = ("name", "points", "tier")
CAMPAIGN_PLACEHOLDERS = MEMBER_PLACEHOLDERS

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_ELLIPSIS = "…"


def _unstorable(char: str, multiline: bool) -> bool:
    """Control characters and lone surrogates: Postgres refuses NUL and UTF-8 has no surrogates."""
    if multiline and char in "\n\r\t":
        return False
    return unicodedata.category(char) in ("Cc", "Cs")


def check_text(
    value: object,
    *,
    field: str,
    max_length: int,
    multiline: bool = False,
    refusal: str | None = None,
) -> str:
    """A trimmed, non-empty text of at most `max_length` characters that every database stores."""
    refusal = refusal or f"{field} must be 1 to {max_length} characters"
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(refusal, field=field)
    text = value.strip()
    if len(text) > max_length:
        raise ValidationError(refusal, field=field)
    if any(_unstorable(char, multiline) for char in text):
        raise ValidationError(
            N_("{field} must not contain control characters"), field=field, params={"field": field}
        )
    return text


def check_message(message: object) -> str:
    """A message's text, trimmed; refuse empty, non-text, over-long and unstorable messages."""
    if not isinstance(message, str) or not message.strip():
        raise ValidationError("message must be a non-empty string", field="message")
    return check_text(
        message,
        field="message",
        max_length=MAX_MESSAGE_LENGTH,
        multiline=True,
        refusal=f"message must be at most {MAX_MESSAGE_LENGTH} characters",
    )


def _allowed_list(allowed: Iterable[str]) -> str:
    names = ", ".join("{" + name + "}" for name in allowed)
    return f"the placeholders here are {names}" if names else "no placeholders are allowed here"


def _refusal(inner: str | None, allowed: Collection[str]) -> ValidationError:
    shown = (inner or "")[:40]
    if inner is None:
        problem = "a single { or } (write {{ or }} for a brace)"
    elif inner in PLACEHOLDERS:
        problem = f"the placeholder {{{shown}}}, which this message cannot fill"
    elif re.match(r"\s*[A-Za-z_]\w*\s*[:!.\[]", inner):
        problem = f"{{{shown}}}: placeholders take no format, conversion, attribute or index"
    else:
        problem = f"the unknown placeholder {{{shown}}}"
    return ValidationError(
        f"the message has {problem}; {_allowed_list(sorted_names(allowed))}", field="message"
    )


def sorted_names(names: Collection[str]) -> list[str]:
    """Placeholder names in the documented order."""
    return [name for name in PLACEHOLDERS if name in names]


def check_template(template: object, allowed: Collection[str]) -> str:
    """A message text whose placeholders are all in `allowed`; anything else is refused."""
    text = check_message(template)
    for match in _TOKEN.finditer(text):
        if match.group(0) in ("{{", "}}"):
            continue
        inner = match.group(1)
        if inner is None or inner not in allowed:
            raise _refusal(inner, allowed)
    return text


def placeholders(template: str) -> list[str]:
    """The known placeholders a text uses, in order of appearance."""
    return [
        match.group(1)
        for match in _TOKEN.finditer(template)
        if match.group(1) is not None and match.group(1) in PLACEHOLDERS
    ]


def member_values(name: str, points: int, tier: str | None) -> dict[str, str]:
    """The values of the member placeholders: first name, balance with separators, tier."""
    return {"name": name.split(" ")[0], "points": f"{points:,}", "tier": tier or ""}


def render(
    template: str,
    values: Mapping[str, object],
    limit: int = MAX_MESSAGE_LENGTH,
    resolve: Callable[[str], str | None] | None = None,
) -> str:
    """The text with each known placeholder replaced by its value, at most `limit` characters.

    Total on any text, so a message saved before templates were checked still goes out: tokens
    that are not placeholders stay as they are. Values are inserted once and never read as
    templates; building stops as soon as the cap is passed.
    """
    parts: list[str] = []
    size = 0
    position = 0
    for match in _TOKEN.finditer(template):
        if size > limit:
            break
        token, inner = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            piece = token[0]
        elif inner is not None and inner in PLACEHOLDERS:
            piece = str(values.get(inner, ""))[: limit + 1]
        elif inner is not None and resolve is not None and (found := resolve(inner)) is not None:
            # Placeholders of another kind (an event's properties), resolved by the caller.
            piece = found[: limit + 1]
        else:
            piece = token
        literal = template[position : match.start()]
        parts += (literal, piece)
        size += len(literal) + len(piece)
        position = match.end()
    else:
        parts.append(template[position:])
    text = "".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


# The languages a member and a per-language message may have: the offered ones.
MESSAGE_LANGUAGES = LANGUAGES


def check_language(value: object, field: str = "language") -> str | None:
    """A member's preferred language: one of MESSAGE_LANGUAGES, or None for the program's."""
    if value is None:
        return None
    if isinstance(value, str) and value in MESSAGE_LANGUAGES:
        return value
    raise ValidationError(
        f"{field} must be one of {', '.join(MESSAGE_LANGUAGES)} or null", field=field
    )


def check_messages(
    value: object, check: Callable[[object], str], field: str = "messages"
) -> dict[str, str] | None:
    """Per-language texts {language: text}, each checked like `message`; None or {} for none."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be an object of language: text", field=field)
    texts: dict[str, str] = {}
    for language, text in value.items():
        if language not in MESSAGE_LANGUAGES:
            raise ValidationError(
                f"{field} languages must be {', '.join(MESSAGE_LANGUAGES)}", field=field
            )
        if text is None or (isinstance(text, str) and not text.strip()):
            continue  # an empty textarea: no text in that language
        try:
            texts[language] = check(text)
        except ValidationError as error:
            raise ValidationError(
                f"{field}.{language}: {error}", field=f"{field}.{language}"
            ) from error
    return texts or None


def pick_message(
    message: str,
    messages: Mapping[str, str] | None,
    member_language: str | None,
    program_language: str | None,
) -> str:
    """The text a member reads: their language's, else the program default language's, else
    `message`."""
    if messages:
        for language in (member_language, program_language):
            if language is not None and messages.get(language):
                return messages[language]
    return message
