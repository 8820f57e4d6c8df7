"""Configuration: the environment plus one YAML deployment file, validated."""

from loopline.config.schema import DeploymentConfig, QueueConfig, TrackingNumber
from loopline.config.settings import (
    ConfigError,
    Env,
    Settings,
    load_deployment,
    load_settings,
    parse_deployment,
)

__all__ = [
    "ConfigError",
    "DeploymentConfig",
    "Env",
    "QueueConfig",
    "Settings",
    "TrackingNumber",
    "load_deployment",
    "load_settings",
    "parse_deployment",
]
