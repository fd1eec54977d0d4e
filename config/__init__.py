"""ktsync configuration: the default ``ktsync.yaml`` and its validated, frozen settings."""

if __name__ != "ktsync.config":  # the checkout's top-level folder, imported by its pre-namespace name
    raise ImportError(
        f"import ktsync.config, not {__name__}: ktsync's packages live under the one name ktsync"
    )

from ktsync.config.settings import ConfigError, Settings, SourceSettings, load_settings

__all__ = ["ConfigError", "Settings", "SourceSettings", "load_settings"]
