"""Every metric's labels are FlowSync's own bounded ones (no tenant's ids), and `flowsync
dev` opens /metrics without a token only on a loopback address."""

from __future__ import annotations

import pytest

import rest_compat.request_metrics  # noqa: F401  (registers the HTTP metrics)
from flowsync.metrics import LABELS, REGISTRY
from flowsync.server import _loopback


def test_every_metric_has_only_bounded_labels() -> None:
    names = {
        name: set(collector._labelnames)  # type: ignore[attr-defined]
        for collector, name in ((c, getattr(c, "_name", "")) for c in REGISTRY._collector_to_names)
    }
    assert names, "no metric registered"
    for name, labels in names.items():
        assert labels <= LABELS, f"{name} has unbounded labels {labels - LABELS}"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("192.168.1.2", False), ("example.com", False)],
)  # fmt: skip
def test_dev_opens_metrics_only_on_loopback(host: str, loopback: bool) -> None:
    assert _loopback(host) is loopback
