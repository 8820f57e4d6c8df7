"""The live state across nodes: one Redis shared by every node."""

from loopline.state.redis_bus import RedisEventBus
from loopline.state.redis_client import connect
from loopline.state.redis_store import RedisStateStore

__all__ = ["RedisEventBus", "RedisStateStore", "connect"]
