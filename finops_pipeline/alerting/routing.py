"""Which Slack channel an alert goes to: a team → channel map, untagged spend to the default.

``FINOPS_SLACK_ROUTES`` is either the map itself, as JSON (``{"ml": "#ml-costs", "data": "C0DATA"}``)
or as ``team=channel`` pairs (``ml=#ml-costs,data=#data-costs``), or the path of a JSON file
holding it. Series that belong to no team (the total, a provider, an account, a service) and the
``untagged`` team go to the default channel, unless the map names ``untagged`` itself. Data gaps
(a series whose line items stopped arriving) go to the ``pipeline`` entry, the pipeline's owner,
or the default channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


PIPELINE_ROUTE = "pipeline"


@dataclass(frozen=True)
class Routes:
    default: str
    teams: dict[str, str] = field(default_factory=dict)

    def channel_for(self, team: str | None, signal: str = "cost") -> str:
        """A data gap goes to the pipeline's owner (the ``pipeline`` entry), not to the team."""
        if signal == "data_gap":
            return self.teams.get(PIPELINE_ROUTE, self.default)
        return self.teams.get(team or "untagged", self.default)


def parse_routes(spec: str | None, default: str) -> Routes:
    """``spec`` as ``FINOPS_SLACK_ROUTES`` gives it (see the module docstring); errors name the
    source and the entry at fault."""
    if not spec or not spec.strip():
        return Routes(default)
    spec = spec.strip()
    source = "FINOPS_SLACK_ROUTES"
    if not spec.startswith("{") and "=" not in spec:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ValueError(f"FINOPS_SLACK_ROUTES={spec!r}: no such file (give a JSON map, team=channel pairs, or a JSON file)")
        source, spec = str(path), path.read_text()
    if spec.lstrip().startswith("{"):
        try:
            teams = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    else:
        teams = {}
        for pair in filter(None, (p.strip() for p in spec.split(","))):
            team, sep, channel = pair.partition("=")
            if not sep:
                raise ValueError(f"{source}: {pair!r} is not team=channel")
            teams[team.strip()] = channel.strip()
    bad = [f"{k!r}: {v!r}" for k, v in teams.items() if not (isinstance(k, str) and k and isinstance(v, str) and v.strip())]
    if bad:
        raise ValueError(f"{source}: every team needs a channel name or id; {len(bad)} entr{'y' if len(bad) == 1 else 'ies'} "
                         f"without one: {', '.join(bad)}")
    return Routes(default, {k: v.strip() for k, v in teams.items()})
