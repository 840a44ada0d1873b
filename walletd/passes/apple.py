"""Apple Wallet passes for cards: the signer, and the cache of signed packages by (serial, tag)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from walletd.observability.metrics import PASSES_SIGNED
from walletd.passes.pkpass import build_pkpass, load_template
from walletd.passes.signing import ManifestSigner
from walletd.passes.view import CardView


class PassCache:
    """Signed packages keyed by (serial, update tag): an unchanged pass is never signed twice.

    Bounded by bytes (a package is ~60 KB), least recently used first out.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int]) -> bytes | None:
        """The cached package, if any."""
        with self._lock:
            data = self._items.get(key)
            if data is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return data

    def put(self, key: tuple[str, int], data: bytes) -> None:
        """Keep a package, dropping the least recently used beyond the byte budget."""
        with self._lock:
            previous = self._items.pop(key, None)
            self.size -= len(previous) if previous is not None else 0
            self._items[key] = data
            self.size += len(data)
            while self.size > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped)


@dataclass
class ApplePasses:
    """Builds signed .pkpass files for cards; one per process."""

    signer: ManifestSigner
    templates_root: Path
    web_service_url: str
    cache: PassCache

    @property
    def pass_type_id(self) -> str:
        """The pass type identifier of the signing certificate."""
        return self.signer.pass_type_id

    def sign(self, view: CardView, tag: int) -> bytes:
        """Sign a card's pass now (no cache): the caller stores it (walletd.passes.serving)."""
        template = load_template(self.templates_root, view.template)
        data = build_pkpass(
            view, signer=self.signer, template=template, web_service_url=self.web_service_url
        )
        PASSES_SIGNED.inc()
        return data
