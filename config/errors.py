"""The one error a bad setting raises: its message names the variable, and the commands print it as is."""


class SettingsError(ValueError):
    """A setting's value cannot be used; the message names the variable."""
