"""Errors of the products domain."""

from __future__ import annotations

from app.platform.errors import Forbidden, NotFound


class ProductNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Product not found")


class NotProductOwner(Forbidden):
    def __init__(self) -> None:
        super().__init__("Only the product's owner may change it")
