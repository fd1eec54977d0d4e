"""Load a contact from its CRM's REST API when a webhook carried only its id."""

from ktsync.worker.crm.base import CrmConfigError, CrmFetcher, FetchedContact, FetchError, fetchers_from_env

__all__ = ["CrmConfigError", "CrmFetcher", "FetchError", "FetchedContact", "fetchers_from_env"]
