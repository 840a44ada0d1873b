"""The gettext catalogs: complete in Chinese, compiled as committed, plurals, formats."""

from __future__ import annotations

import ast
import gettext
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from walletd.errors import ValidationError
from walletd.web.pages import formats, i18n

PACKAGE = Path(i18n.__file__).resolve().parents[2]
CATALOGS = i18n.translations_dir()
# The same mapping and keywords as `make translations` (walletd/translations/babel.cfg).
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
EN = Locale.parse("en")
ZH = Locale.parse("zh_Hant_TW")


def extracted(root: Path) -> set[str | tuple[str, str]]:
    """Every msgid `pybabel extract` finds under `root` (a plural as its two English forms)."""
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(root), METHODS, keywords=KEYWORDS, comment_tags=()
    ):
        if isinstance(message, tuple):
            found.add((message[0], message[1]) if message[1] else message[0])
        else:
            found.add(message)
    return found


def po(language: str) -> Catalog:
    with (CATALOGS / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f)


def untranslated(msgids: set[str | tuple[str, str]], catalog: Catalog) -> list[str]:
    """The msgids the catalog has no (non-empty, non-fuzzy) translation for."""
    missing = []
    for msgid in msgids:
        message = catalog.get(msgid)
        string = None if message is None else message.string
        strings = [string] if isinstance(string, str) else list(string or ())
        if message is None or message.fuzzy or not strings or not all(strings):
            missing.append(str(msgid))
    return sorted(missing)


def test_every_text_of_the_code_and_templates_has_a_traditional_chinese_translation() -> None:
    msgids = extracted(PACKAGE)
    assert len(msgids) > 500
    assert untranslated(msgids, po("zh_Hant")) == []


def test_a_new_text_without_a_translation_fails_the_catalog_test(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "new.html").write_text(
        '<p>{{ _("Log in") }} {{ _("A brand-new sentence, {name}", name=x) }}</p>'
    )
    (tmp_path / "new_page.py").write_text(
        "from walletd.web.pages.render import _, ngettext\n"
        'A = _("Another new text")\n'
        'B = ngettext("{num} new thing", "{num} new things", 2)\n'
    )
    msgids = extracted(tmp_path)
    assert "Log in" in msgids
    assert untranslated(msgids, po("zh_Hant")) == [
        "('{num} new thing', '{num} new things')",
        "A brand-new sentence, {name}",
        "Another new text",
    ]


def test_the_template_and_the_catalogs_hold_what_the_code_says() -> None:
    """`make translations` was run: the .pot and both .po files have exactly the extracted ids."""
    msgids = extracted(PACKAGE)
    with (CATALOGS / "messages.pot").open("rb") as f:
        pot = read_po(f)
    for catalog in (pot, po("en"), po("zh_Hant")):
        ids = {m.id if isinstance(m.id, str) else (m.id[0], m.id[1]) for m in catalog if m.id}
        assert ids == msgids


@pytest.mark.parametrize("language", ["en", "zh_Hant"])
def test_the_committed_mo_is_the_compiled_po(language: str) -> None:
    buffer = io.BytesIO()
    write_mo(buffer, po(language))
    buffer.seek(0)
    fresh = gettext.GNUTranslations(buffer)
    with (CATALOGS / language / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        committed = gettext.GNUTranslations(f)
    assert committed._catalog == fresh._catalog  # type: ignore[attr-defined]


def test_translations_keep_their_placeholders() -> None:
    names = re.compile(r"\{(\w+)\}")
    for message in po("zh_Hant"):
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        string = message.string
        strings = [string] if isinstance(string, str) else list(string or ())
        wanted = set().union(*(set(names.findall(i)) for i in ids))
        for string in strings:
            assert set(names.findall(string)) <= wanted, message.id
            if isinstance(message.id, str):
                assert set(names.findall(string)) == wanted, message.id


def test_brace_placeholders_are_marked_for_translators() -> None:
    for message in po("zh_Hant"):
        text = message.id if isinstance(message.id, str) else message.id[0]
        if re.search(r"\{\w+\}", text):
            assert "python-brace-format" in message.flags, text


def test_plural_forms() -> None:
    en, zh = i18n.plural_translator("en"), i18n.plural_translator("zh-Hant")
    one, many = "Import {num} member", "Import {num} members"
    assert en(one, many, 1) == "Import 1 member"
    assert en(one, many, 3) == "Import 3 members"
    assert en(one, many, 1240) == "Import 1,240 members"  # the count in the locale's digits
    assert zh(one, many, 1) == "匯入 1 位會員" and zh(one, many, 3) == "匯入 3 位會員"
    assert po("zh_Hant").num_plurals == 1 and po("en").num_plurals == 2


def test_the_catalogs_are_found_inside_the_package() -> None:
    assert CATALOGS == PACKAGE / "translations"
    assert (CATALOGS / "zh_Hant" / "LC_MESSAGES" / "messages.mo").is_file()


def test_money_numbers_and_dates_follow_the_locale() -> None:
    assert formats.money(123456, "TWD", ZH) == "$1,234.56"
    assert formats.money(123400, "TWD", ZH) == "$1,234"  # CLDR: TWD cash has no cents
    assert formats.money(1250, "USD", EN) == "$12.50"
    assert formats.money(1000, "USD", EN) == "$10.00"
    assert formats.money(1500, "JPY", EN) == "¥1,500"
    assert formats.number(1240, ZH) == "1,240" and formats.signed(-40, EN) == "-40"
    assert formats.signed(1200, EN) == "+1,200"
    assert formats.percent(Decimal("0.255"), ZH, decimals=1) == "25.5%"
    assert formats.date(date(2026, 3, 10), locale=ZH) == "2026年3月10日"
    assert formats.date(date(2026, 3, 10), locale=EN) == "Mar 10, 2026"
    moment = datetime(2026, 3, 10, 20, 30, tzinfo=UTC)
    # 20:30 UTC is the next morning in Taipei: the day and time are the program's.
    assert formats.datetime(moment, "Asia/Taipei", ZH) == "2026年3月11日 凌晨4:30 CST"
    assert (
        formats.datetime(moment, None, EN) == "Mar 10, 2026 8:30\u202fPM UTC"
    )  # CLDR: a narrow no-break space


def test_an_error_carries_a_template_and_its_english_message() -> None:
    exc = ValidationError(
        "{field} must be a whole number from {low} to {high}",
        field="weekly_message_cap",
        params={"field": "weekly_message_cap", "low": 0, "high": "50"},
    )
    assert exc.message == "weekly_message_cap must be a whole number from 0 to 50"
    assert str(exc) == exc.message and exc.field == "weekly_message_cap"
    assert exc.template == "{field} must be a whole number from {low} to {high}"
    plain = ValidationError("points must be a non-zero whole number {not a placeholder")
    assert plain.message == plain.template and plain.params == {}


def test_every_error_raised_with_params_marks_its_template_for_the_catalogs() -> None:
    """`SomeError(N_("… {name} …"), params=…)`: without N_ the template is never translated."""
    unmarked = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not any(k.arg == "params" for k in node.keywords):
                continue
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant | ast.JoinedStr):  # a literal not wrapped in N_()
                unmarked.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert unmarked == []
