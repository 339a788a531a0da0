"""The worker's web page, /metrics and /stats: see what you hear.

``install`` wires them into the app. Nothing runs, and the player is told of no one, unless the worker
serves the web (Faust's ``--with-web``, the default; ``--without-web`` skips it all).
"""
from __future__ import annotations

from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CollectorRegistry

from config.settings import Settings
from web.clients import Clients
from web.feed import PerformanceFeed
from web.lag import PartitionLag
from web.live import LiveView
from web.metrics import AppMetrics
from web.pages import register
from web.performance import Performance

# aiokafka's ListOffsets answer is waited for this many poll intervals before the broker counts as silent.
LAG_TIMEOUT_INTERVALS = 2


def install(app, stage, settings: Settings) -> LiveView:
    """Set up the live view of ``stage`` (agents/stage.py) on ``app``, to run if the worker serves the web."""
    registry = CollectorRegistry()
    metrics = AppMetrics(registry, group=app.conf.id)
    lag = PartitionLag(lambda: app.consumer, lambda: app.monitor, settings.topic, metrics,
                       unreachable_since=lambda: app.broker_outage_log.unreachable_since,
                       timeout=settings.lag_interval * LAG_TIMEOUT_INTERVALS)
    live = LiveView(Performance(PerformanceFeed(), stage, metrics), lag, Clients(settings.web_client_queue),
                    metrics, settings.web_interval, settings.lag_interval)

    def serve_if_web() -> None:
        if not app.conf.web_enabled:
            return
        # Faust's own figures (PrometheusMonitor) and the app's, in one registry at /metrics.
        setup_prometheus_sensors(app, registry=registry)
        register(app, live)
        stage.observe(live.feed)
        app.add_future(live.push())
        app.add_future(live.poll_lag())
    app.on_configured.append(serve_if_web)
    return live
