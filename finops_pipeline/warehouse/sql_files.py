"""The queries that stay in Python live in ``.sql`` files beside the code that runs them."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def sql_file(package: str, name: str) -> str:
    """The text of ``<package>/sql/<name>.sql``."""
    return (resources.files(package) / "sql" / f"{name}.sql").read_text()
