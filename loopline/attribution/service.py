"""The attribution room as the node runs it: store, pipeline and outbox, wired once."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from loopline.attribution.classifier import OutcomeModel
from loopline.attribution.exporters import Exporter, build_exporter
from loopline.attribution.facts import CallFacts, facts_from_live, facts_from_record
from loopline.attribution.outbox import Outbox
from loopline.attribution.pipeline import AttributionPipeline, UnknownCall
from loopline.attribution.store import AttributionStore
from loopline.config.attribution import AttributionConfig, Destination
from loopline.domain.clock import Clock
from loopline.records.base import Records
from loopline.state.base import EventBus, StateStore, StateUnavailable

log = logging.getLogger(__name__)


@dataclass
class AttributionService:
    config: AttributionConfig
    store: AttributionStore
    pipeline: AttributionPipeline
    outbox: Outbox
    records: Records
    state: StateStore
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(
        cls,
        config: AttributionConfig,
        *,
        records_url: str,
        records: Records,
        state: StateStore,
        bus: EventBus,
        clock: Clock,
        node_id: str,
        env: Mapping[str, str] | None = None,
        default_region: str = "US",
    ) -> AttributionService:
        environ = env if env is not None else os.environ
        store = AttributionStore(records_url)
        destinations: dict[str, Destination] = {d.name: d for d in config.destinations if d.enabled}
        exporters: dict[str, Exporter] = {
            name: build_exporter(dest, environ, default_region)
            for name, dest in destinations.items()
        }
        outbox = Outbox(
            store=store,
            exporters=exporters,
            destinations=destinations,
            clock=clock,
            owner=node_id,
            publish=bus.publish,
        )
        pipeline = AttributionPipeline(
            config=config,
            store=store,
            records=records,
            bus=bus,
            clock=clock,
            on_conversions=outbox.wake,
        )
        return cls(config, store, pipeline, outbox, records, state)

    async def run(self) -> None:
        path = self.config.classifier.model_path
        if path and self.pipeline.model is None:
            try:
                self.pipeline.model = await asyncio.to_thread(OutcomeModel.load, path)
            except (OSError, ValueError) as exc:
                # The rules still classify every call; the model is a refinement.
                log.warning("outcome model not loaded", extra={"error": type(exc).__name__})
        await self.store.start()
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.pipeline.run(), name="attribution-pipeline")
                group.create_task(self.outbox.run(), name="attribution-outbox")
        finally:
            self.ready.clear()
            await self.store.close()

    async def facts_for(self, call_id: str, wait_s: float = 3.0) -> CallFacts:
        """The call as the live state holds it while it goes on, else as the records do.

        The records lag the call by the time the records writer takes; a call that has left
        the live state but whose end the records have not applied yet is waited for a little
        (and so is an unknown call id, before it is called unknown).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            try:
                live = await self.state.get_call(call_id)
            except StateUnavailable:
                live = None
            if live is not None:
                return facts_from_live(live)
            record = await self.records.get_call(call_id)
            if record is None and loop.time() >= deadline:
                raise UnknownCall(call_id)
            if record is not None and (record.ended_at is not None or loop.time() >= deadline):
                return facts_from_record(record)
            await asyncio.sleep(0.05)
