"""Errors of the orders domain."""

from __future__ import annotations

from app.platform.errors import AppError, Conflict, NotFound


class OrderNotFound(NotFound):
    """Also for someone else's order: it is as unknown to the caller as a missing one."""

    def __init__(self) -> None:
        super().__init__("Order not found")


class OrderedProductNotFound(NotFound):
    def __init__(self, product_id: int) -> None:
        super().__init__(f"Product {product_id} not found")


class InsufficientStock(Conflict):
    def __init__(self, product_id: int) -> None:
        super().__init__(f"Insufficient stock for product {product_id}")


class OrderNotCancellable(Conflict):
    def __init__(self) -> None:
        super().__init__("Only an order in status 'created' can be cancelled")


class OrderTotalTooLarge(AppError):
    """The total would not fit orders.total (NUMERIC(14, 2)): refused before
    anything is written, rather than failing in the database or in the answer."""

    status_code = 422
    problem_type = "urn:storefront:problem:order-total-too-large"

    def __init__(self) -> None:
        super().__init__("The order total must be below 1,000,000,000,000.00; split the order")


class IdempotencyKeyReused(AppError):
    """The IETF Idempotency-Key draft answers 422 to a key sent again with a
    different request."""

    status_code = 422
    problem_type = "urn:storefront:problem:idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used for a different request")
