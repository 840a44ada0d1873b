"""The e-mails' catalog lives in walletd/email/catalog.py (shared with the card e-mail)."""

from walletd.email.catalog import LANGUAGES, Translator, language_of, translator

__all__ = ["LANGUAGES", "Translator", "language_of", "translator"]
