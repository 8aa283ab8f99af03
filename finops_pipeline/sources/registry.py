"""The billing sources installed: every entry point in the group ``finops_pipeline.sources``.

A package adds one with, in its pyproject.toml:

    [project.entry-points."finops_pipeline.sources"]
    mysource = "mypackage.mysource:MySource"
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from finops_pipeline.sources.base import BillingSource

if TYPE_CHECKING:
    from finops_pipeline.settings import Settings

GROUP = "finops_pipeline.sources"


@cache
def source_names() -> tuple[str, ...]:
    return tuple(sorted({ep.name for ep in entry_points(group=GROUP)}))


def source_class(name: str) -> type[BillingSource]:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise KeyError(f"no billing source {name!r} installed (entry-point group {GROUP}); installed: "
                       f"{', '.join(source_names())}")
    cls = matches[0].load()
    if cls.name != name:
        raise TypeError(f"entry point {name!r} loads {cls.__name__}, whose name is {cls.name!r}")
    return cls


def build_sources(settings: Settings) -> list[BillingSource]:
    """The configured sources, each built from the settings."""
    return [source_class(name).from_settings(settings) for name in settings.sources]
