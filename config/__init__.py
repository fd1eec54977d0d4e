"""ktsync configuration: the default ``ktsync.yaml`` and its validated, frozen settings."""

from config.settings import ConfigError, Settings, SourceSettings, load_settings

__all__ = ["ConfigError", "Settings", "SourceSettings", "load_settings"]
