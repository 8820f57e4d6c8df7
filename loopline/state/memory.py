"""The embedded live state: one node, in this process."""

from loopline.state.memory_bus import MemoryEventBus, MemorySubscription
from loopline.state.memory_store import MemoryStateStore

__all__ = ["MemoryEventBus", "MemoryStateStore", "MemorySubscription"]
