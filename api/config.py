"""The API's settings are the shared ``persistence.settings.Settings`` (one object for api and worker)."""

from persistence.settings import Settings, get_settings, is_loopback

__all__ = ["Settings", "get_settings", "is_loopback"]
