"""One exporter per destination, each rendering the destination's own format.

`build_exporter(destination, env)` makes the exporter a configured destination names.
"""

from __future__ import annotations

from collections.abc import Mapping

from loopline.attribution.exporters.base import Exporter, Judgement, Outgoing, Skip
from loopline.config.attribution import (
    Destination,
    Ga4Destination,
    GoogleAdsDestination,
    MetaDestination,
    WebhookDestination,
)


def build_exporter(
    destination: Destination, env: Mapping[str, str], default_region: str = "US"
) -> Exporter:
    if isinstance(destination, GoogleAdsDestination):
        from loopline.attribution.exporters.google_ads import GoogleAdsExporter

        return GoogleAdsExporter(destination, env, default_region)
    if isinstance(destination, MetaDestination):
        from loopline.attribution.exporters.meta import MetaExporter

        return MetaExporter(destination, env, default_region)
    if isinstance(destination, Ga4Destination):
        from loopline.attribution.exporters.ga4 import Ga4Exporter

        return Ga4Exporter(destination, env)
    if isinstance(destination, WebhookDestination):
        from loopline.attribution.exporters.webhook import WebhookExporter

        return WebhookExporter(destination, env)
    raise TypeError(f"no exporter for {type(destination).__name__}")


__all__ = ["Exporter", "Judgement", "Outgoing", "Skip", "build_exporter"]
