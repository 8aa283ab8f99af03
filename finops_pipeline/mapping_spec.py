"""A name → value map given in one environment variable: as JSON (``{"ml": "#ml-costs"}``), as
``name=value`` pairs (``ml=#ml-costs,data=#data-costs``), or as the path of a JSON file holding
it. The Slack routes (team → channel) and the AI teams (project or workspace → team) use it."""

from __future__ import annotations

import json
from pathlib import Path


def parse_mapping(spec: str | None, variable: str, pair: str = "name=value") -> dict[str, str]:
    """The map ``spec`` gives (empty for none); a ``ValueError`` that names ``variable`` (or the
    file) and the entry at fault. ``pair`` is how an entry is written, for messages
    (``team=channel``)."""
    if not spec or not spec.strip():
        return {}
    spec = spec.strip()
    source = variable
    if not spec.startswith("{") and "=" not in spec:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ValueError(f"{variable}={spec!r}: no such file (give a JSON map, {pair} pairs, or a JSON file)")
        source, spec = str(path), path.read_text()
    if spec.lstrip().startswith("{"):
        try:
            found = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    else:
        found = {}
        for entry in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = entry.partition("=")
            if not sep:
                raise ValueError(f"{source}: {entry!r} is not {pair}")
            found[name.strip()] = value.strip()
    what = pair.split("=")[1]
    bad = [f"{k!r}: {v!r}" for k, v in found.items() if not (isinstance(k, str) and k and isinstance(v, str) and v.strip())]
    if bad:
        raise ValueError(f"{source}: every entry needs a {what}; {len(bad)} entr{'y' if len(bad) == 1 else 'ies'} "
                         f"without one: {', '.join(bad)}")
    return {k: v.strip() for k, v in found.items()}
