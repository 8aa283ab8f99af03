"""Which Slack channel an alert goes to: a team → channel map, untagged spend to the default.

``FINOPS_SLACK_ROUTES`` is either the map itself, as JSON (``{"ml": "#ml-costs", "data": "C0DATA"}``)
or as ``team=channel`` pairs (``ml=#ml-costs,data=#data-costs``), or the path of a JSON file
holding it. Series that belong to no team (the total, a provider, an account, a service) and the
``untagged`` team go to the default channel, unless the map names ``untagged`` itself. Data gaps
(a series whose line items stopped arriving) go to the ``pipeline`` entry, the pipeline's owner,
or the default channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from finops_pipeline.mapping_spec import parse_mapping


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
    return Routes(default, parse_mapping(spec, "FINOPS_SLACK_ROUTES", "team=channel"))
