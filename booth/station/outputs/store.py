"""The store output: the product (a photo or a clip) is published to the store (the data
dir, or the shared store through the station's outbox) and its link is what the QR code
opens."""

from __future__ import annotations

from datetime import datetime

from booth.station.outputs import Delivered, Product
from booth.store import Store


class StoreOutput:
    def __init__(self, store: Store, base_url: str) -> None:
        self.store, self.base_url = store, base_url

    def deliver(self, product: Product) -> Delivered:
        capture = self.store.publish(product.file, ttl_seconds=product.retention_hours * 3600,
                                     raw_jpeg=product.raw, thumb_jpeg=product.thumb,
                                     kind=product.kind.value, poster_jpeg=product.poster)
        link = f"{self.base_url}/p/{capture.token}"
        if capture.pending:  # on its way to the shared store: see store.waiting()
            link += f"?until={int(capture.expires_at)}"
        return Delivered(link, datetime.fromtimestamp(capture.expires_at), capture.short_id)
