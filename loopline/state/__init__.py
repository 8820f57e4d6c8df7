"""Live state (memory or Redis) and the event bus."""

from loopline.state.base import EventBus, StateStore, StateUnavailable, Subscription

__all__ = ["EventBus", "StateStore", "StateUnavailable", "Subscription"]
