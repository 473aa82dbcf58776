"""Scenario 7: Redis scaled to 0 and back under load. The cache steps aside:
no 5xx, cached routes keep answering with current data (a write during the
outage shows at once), readiness stays, and caching resumes afterwards."""

from __future__ import annotations

import secrets
import time

import httpx

from tests.e2e.conftest import Figures
from tests.e2e.kube import Cluster, wait_for
from tests.e2e.loadpod import READ_PATHS, LoadPod, codes, failures, server_errors, wait_started
from tests.e2e.promwatch import ServerErrorWatch
from tests.e2e.test_05_drain import ReadyFloor


def scale_redis(cluster: Cluster, replicas: int) -> None:
    name = f"{cluster.fullname}-redis"
    cluster.kubectl("scale", f"statefulset/{name}", f"--replicas={replicas}")
    if replicas == 0:
        wait_for("Redis to be gone", lambda: cluster.pod(f"{name}-0") is None, timeout=120, interval=1)
    else:
        cluster.wait_rollout("statefulset", name, timeout=180)


def user(http: httpx.Client) -> dict[str, str]:
    name = f"redis-{secrets.token_hex(4)}"
    password = "redis scenario password"
    http.post("/users/", json={"email": f"{name}@example.com", "username": name, "password": password})
    tokens = http.post("/auth/token", data={"username": name, "password": password}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_redis_down_and_back_serves_correct_data_without_5xx(cluster: Cluster, api: str, figures: Figures) -> None:
    replicas = len(cluster.wait_api_settled())
    restarts_before = cluster.api_restarts()
    plan = {
        "max_seconds": 400,
        "max_requests": 20_000,
        "setup": {"products": 3},
        "writers": {"concurrency": 1, "rate": 2, "retry": True},
        "readers": {"concurrency": 4, "rate": 30, "paths": READ_PATHS},
    }
    with httpx.Client(base_url=api, timeout=15) as http:
        auth = user(http)
        product = http.post("/products/", json={"name": "Cache mug", "price": "4.00", "stock": 50}, headers=auth).json()
        path = f"/products/{product['id']}"
        http.get(path)
        assert http.get(path).headers["x-cache"] == "HIT"

        with (
            LoadPod(cluster, "e2e-redis-load", plan) as load,
            ServerErrorWatch(cluster) as watch,
            ReadyFloor(cluster) as floor,
        ):
            wait_started()
            down_at = time.monotonic()
            scale_redis(cluster, 0)
            # The cache is away: reads are computed, a write shows at once.
            ready = http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"]["cache"] == "degraded"
            order = http.post("/orders/", json={"items": [{"product_id": product["id"], "quantity": 2}]}, headers=auth)
            assert order.status_code == 201
            during = [http.get(path) for _ in range(3)]
            assert all(r.status_code == 200 and r.json()["stock"] == 48 for r in during), [r.text for r in during]
            assert {r.headers["x-cache"] for r in during} == {"MISS"}, "nothing is cached while Redis is away"
            assert http.get("/stats").status_code == 200
            time.sleep(5)

            scale_redis(cluster, 1)
            back_at = time.monotonic()
            wait_for(
                "readiness to report the cache ok again",
                lambda: http.get("/readyz").json()["checks"]["cache"] == "ok",
                timeout=60,
                interval=1,
            )

            # Caching resumes, with the data as it is now.
            def cached_again() -> httpx.Response | None:
                response = http.get(path)
                return response if response.headers["x-cache"] == "HIT" else None

            hit = wait_for("a cache hit", cached_again, timeout=60, interval=0.5)
            resumed_s = round(time.monotonic() - back_at, 1)
            assert hit.json()["stock"] == 48, "the cache serves what the database holds"
            wait_started()
            result = load.finish()
        outage_s = round(back_at - down_at, 1)

    counts = codes(result)
    figures.record(
        requests_sent=result["sent"],
        outcomes=counts,
        redis_away_s=outage_s,
        caching_resumed_after_s=resumed_s,
        lowest_ready_api_pods=floor.lowest,
        server_5xx_counted=watch.growth(),
    )
    assert failures(counts) == {}, (
        f"non-2xx (besides 429) or connection errors: {result['first_errors']}\n{watch.warnings()}"
    )
    assert server_errors(counts) == 0
    assert watch.growth() == 0
    assert floor.lowest == replicas, "readiness flapped while Redis was away"
    assert cluster.api_restarts() == restarts_before
