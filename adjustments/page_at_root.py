"""The worker's own page at ``/`` of Faust's web server, where Faust serves ``{"status": "OK"}``.

Faust's aiohttp web driver mounts its production index blueprint at ``/`` once the server is
initialised (faust/web/base.py, ``PRODUCTION_BLUEPRINTS``; or the statistics blueprint there in debug
mode), and aiohttp refuses a second GET route on a path. The app's Web is Faust's aiohttp one without
that blueprint, made by ``App._new_web``, so a user opening the worker's address finds the
performance (web/). Faust's statistics stay reachable with its ``web_stats_enabled`` setting, as before.
"""
from __future__ import annotations

import faust
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from adjustments.tripwire import Adjustment, Touch

ADJUSTMENT = Adjustment("adjustments/page_at_root.py", "the web page at /", (
    Touch(faust.App, "_new_web"),
    Touch(AiohttpWeb, "production_blueprints"),
))


class PageAtRootWeb(AiohttpWeb):
    production_blueprints = []


class PageAtRootApp:
    """Faust's app (mixed in before it)."""

    def _new_web(self) -> PageAtRootWeb:
        return PageAtRootWeb(self)
