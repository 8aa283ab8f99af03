"""Errors a user acts on: each message names the variable, file or endpoint, the field and how
many rows."""


class SettingsError(ValueError):
    """A variable with a value the pipeline cannot use."""


class BillingDataError(ValueError):
    """Line items that cannot be loaded as they are; nothing of their batch was written."""
