"""Loopline: real-time call routing and call intelligence."""

__version__ = "0.1.0"
