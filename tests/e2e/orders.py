"""What a writer was told, checked against what PostgreSQL holds.

Each load pod registers a user of its own, so its orders are exactly the
orders of that user: no other test's writes get in the way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tests.e2e.kube import Cluster


@dataclass(frozen=True)
class OrderAudit:
    attempted: int  # distinct Idempotency-Keys the writer used
    acknowledged: int  # keys answered 2xx (first try or the retry)
    found: int  # acknowledged keys whose order is in the database with the id the writer was given
    lost: list[str]  # acknowledged keys missing (or with another id)
    duplicates: int  # rows beyond one per key, plus rows without a key
    phantoms: list[str]  # rows whose key the writer never used
    unacknowledged: int  # keys that failed twice
    unacknowledged_committed: int  # of those, committed anyway (the answer was lost): allowed
    orders_without_items: int
    totals_not_matching_items: int
    stock_mismatches: list[str]

    def figures(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["lost"] = len(self.lost)
        figures["phantoms"] = len(self.phantoms)
        figures["stock_mismatches"] = len(self.stock_mismatches)
        return figures

    def assert_consistent(self) -> None:
        assert self.lost == [], f"acknowledged orders missing from PostgreSQL: {self.lost[:10]}"
        assert self.duplicates == 0, f"{self.duplicates} duplicate orders"
        assert self.phantoms == [], f"orders with keys the writer never sent: {self.phantoms[:10]}"
        assert self.orders_without_items == 0, "orders without items (a partial write)"
        assert self.totals_not_matching_items == 0, "order totals that differ from their items"
        assert self.stock_mismatches == [], f"stock that does not match the orders: {self.stock_mismatches}"


def audit(cluster: Cluster, result: dict[str, Any]) -> OrderAudit:
    user = int(result["user_id"])
    rows = cluster.psql("SELECT idempotency_key, id FROM orders WHERE user_id = :user", user=user)
    in_db = {key: int(order_id) for key, order_id in rows}
    acknowledged = {key: int(order_id) for key, order_id in result["acknowledged"]}
    unacknowledged = set(result["unacknowledged"])
    counted = cluster.psql(
        "SELECT count(*), count(DISTINCT idempotency_key) FROM orders WHERE user_id = :user", user=user
    )
    total, distinct = (int(v) for v in counted[0])
    without_items = int(
        cluster.scalar(
            "SELECT count(*) FROM orders o WHERE o.user_id = :user "
            "AND NOT EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id)",
            user=user,
        )
    )
    wrong_totals = int(
        cluster.scalar(
            "SELECT count(*) FROM orders o WHERE o.user_id = :user AND o.total <> "
            "(SELECT coalesce(sum(i.unit_price * i.quantity), 0) FROM order_items i WHERE i.order_id = o.id)",
            user=user,
        )
    )
    # Stock taken = items of orders still standing (the writers never cancel).
    stock_rows = cluster.psql(
        "SELECT p.id, p.stock, coalesce(sum(i.quantity) FILTER (WHERE o.status = 'created'), 0) "
        "FROM products p LEFT JOIN order_items i ON i.product_id = p.id LEFT JOIN orders o ON o.id = i.order_id "
        "WHERE p.owner_id = :user GROUP BY p.id ORDER BY p.id",
        user=user,
    )
    initial = int(result["stock"])
    mismatches = [
        f"product {pid}: stock {stock}, ordered {taken}, initial {initial}"
        for pid, stock, taken in stock_rows
        if int(stock) + int(taken) != initial
    ]
    return OrderAudit(
        attempted=len(set(acknowledged) | unacknowledged),
        acknowledged=len(acknowledged),
        found=sum(1 for key, order_id in acknowledged.items() if in_db.get(key) == order_id),
        lost=sorted(key for key, order_id in acknowledged.items() if in_db.get(key) != order_id),
        duplicates=total - distinct,  # count(DISTINCT) skips NULL keys: they count too
        phantoms=sorted(set(in_db) - set(acknowledged) - unacknowledged),
        unacknowledged=len(unacknowledged),
        unacknowledged_committed=len(unacknowledged & set(in_db)),
        orders_without_items=without_items,
        totals_not_matching_items=wrong_totals,
        stock_mismatches=mismatches,
    )
