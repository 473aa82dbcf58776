"""The server's own count of 5xx answers (`http_requests_total`), per pod.

Pods come and go during the scenarios and a counter dies with its pod, so a
background thread scrapes every API pod's metrics port from inside the pod
(`kubectl exec`: the chart's NetworkPolicy admits metrics scrapes only from
the monitoring namespace) every couple of seconds and keeps the last value
seen per pod. The counter only grows, so the last value is the largest.

The same thread keeps the pods' warning and error log lines: a pod's log
goes with the pod, and a scenario that fails should say why the server
answered as it did.
"""

from __future__ import annotations

import json
import re
import threading
from types import TracebackType

from kubernetes.client.exceptions import ApiException

from tests.e2e.kube import NAMESPACE, Cluster

SCRAPE = (
    "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=3).read().decode())"
)
SERIES = re.compile(r"^http_requests_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.eE+]+)$")
STATUS = re.compile(r'status="(?P<status>\d+)"')
HANDLER = re.compile(r'handler="(?P<handler>[^"]*)"')
# The kubelet's probes, left out as the chart's SLO rules leave them out
# (prometheusRule.excludedHandlers): a draining pod's /readyz answers 503 on
# purpose, to leave the Service, and no client sees it.
PROBES = frozenset({"/livez", "/readyz"})
WORTH_TELLING = frozenset({"WARNING", "ERROR", "CRITICAL"})
SHOWN_LINES = 40


def server_errors_in(exposition: str) -> int:
    """Sum of http_requests_total over every 5xx status in one scrape,
    probes excepted."""
    total = 0.0
    for line in exposition.splitlines():
        match = SERIES.match(line)
        if match:
            status = STATUS.search(match["labels"])
            handler = HANDLER.search(match["labels"])
            if handler and handler["handler"] in PROBES:
                continue
            if status and status["status"].startswith("5"):
                total += float(match["value"])
    return int(total)


class ServerErrorWatch:
    """`with ServerErrorWatch(cluster) as watch: ...; watch.growth()`."""

    def __init__(self, cluster: Cluster, port: int = 9090, interval: float = 2.0) -> None:
        self.cluster = cluster
        self.port = port
        self.interval = interval
        self.baseline: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.scrapes = 0
        self.logged: dict[str, str] = {}  # line -> pod
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="5xx-watch", daemon=True)

    def scrape_all(self) -> dict[str, int]:
        values: dict[str, int] = {}
        for pod in self.cluster.api_pods():
            name = pod["metadata"]["name"]
            if pod["status"]["phase"] != "Running":
                continue
            result = self.cluster.kubectl(
                "exec", name, "-c", "api", "--", "python3", "-c", SCRAPE.format(port=self.port),
                timeout=20, check=False,
            )  # fmt: skip
            if result.returncode == 0:
                values[name] = server_errors_in(result.stdout)
            self._keep_warnings(name)
        return values

    def _keep_warnings(self, pod: str) -> None:
        # Overlapping windows; the set of lines drops what was already kept.
        since = int(self.interval * 3) + 5
        try:
            text = self.cluster.core.read_namespaced_pod_log(pod, NAMESPACE, container="api", since_seconds=since)
        except ApiException:
            return
        for line in str(text).splitlines():
            try:
                level = json.loads(line).get("level")
            except (ValueError, AttributeError):
                continue
            if level in WORTH_TELLING:
                self.logged.setdefault(line, pod)

    def warnings(self) -> str:
        """The API pods' warning and error lines seen during the watch, oldest
        first (each JSON line starts with its time), for a failure message."""
        lines = sorted(self.logged.items(), key=lambda item: json.loads(item[0]).get("time", ""))
        shown = [f"{pod}: {line}" for line, pod in lines[-SHOWN_LINES:]]
        return "API pods' warnings:\n" + ("\n".join(shown) if shown else "(none)")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for name, value in self.scrape_all().items():
                self.last[name] = max(value, self.last.get(name, 0))
            self.scrapes += 1

    def __enter__(self) -> ServerErrorWatch:
        self.baseline = self.scrape_all()
        self.last = dict(self.baseline)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        for name, value in self.scrape_all().items():
            self.last[name] = max(value, self.last.get(name, 0))

    def growth(self) -> int:
        """5xx counted by the servers since the watch began (pods seen since
        then start from zero)."""
        return sum(value - self.baseline.get(name, 0) for name, value in self.last.items())

    def pods_seen(self) -> int:
        return len(self.last)
