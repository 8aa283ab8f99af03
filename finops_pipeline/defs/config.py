"""Launchpad run config made from the domain's own parameter objects, so each set of parameters
is declared once (in detection) and its defaults follow the grain."""

from dataclasses import fields, replace
from typing import Any, get_type_hints

from dagster import Config


def run_config_class(name: str, defaults: Any, exclude: tuple[str, ...] = (), doc: str = "") -> type[Config]:
    """A ``dagster.Config`` whose fields are ``defaults``' dataclass fields (less ``exclude``),
    defaulting to its values."""
    chosen = [f for f in fields(defaults) if f.name not in exclude]
    types = get_type_hints(type(defaults))
    namespace = {"__annotations__": {f.name: types[f.name] for f in chosen},
                 **{f.name: getattr(defaults, f.name) for f in chosen}, "__doc__": doc}
    return type(name, (Config,), namespace)


def from_run_config(defaults: Any, config: Config) -> Any:
    """``defaults`` with the values set in the launchpad."""
    return replace(defaults, **config.model_dump())
