"""The anomaly report: a run summary and one analysis per incident, written by an LLM in a JSON
schema when one is configured (``build_report``; what is asked and kept: ``alerting.llm``), by a
deterministic template otherwise or when the LLM fails or its reply cannot be trusted, and always
ending with the figures table computed from the data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import openai
import pandas as pd

from finops_pipeline.alerting.facts import figures_table, findings_list, money
from finops_pipeline.alerting.incident import Incident
from finops_pipeline.alerting.llm import (
    ANALYSIS_PROMPT,
    LIKELIHOODS,
    SEVERITY_LEVELS,
    SUMMARY_PROMPT,
    Hypothesis,
    IncidentAnalysis,
    Priority,
    RequestFailed,
    RunSummary,
    Usage,
    ask,
    clean,
    incident_data,
    summary_data,
)


@dataclass(frozen=True)
class Analysis:
    """One section of the report: an incident's analysis, or the run's summary."""

    incident_id: str | None  # None for the summary
    kind: str  # "incident" or "summary"
    markdown: str
    data: dict | None  # the validated reply (``model_dump`` of it); None for the template
    model: str | None
    used_fallback: bool
    fallback_reason: str | None
    prompt_tokens: int = 0  # summed over every request made, the repair included
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0  # wall time of all requests, retries and their back-off included
    requests: int = 0  # HTTP requests, the client's retries included
    summary: str = ""  # the section's summary paragraph (the reply's, or the template's), for the alert


@dataclass(frozen=True)
class RunReport:
    markdown: str
    analyses: list[Analysis]  # the summary first, then the incidents
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_s: float
    fallbacks: int  # sections written by the template

    @property
    def requests(self) -> int:
        return sum(a.requests for a in self.analyses)

    @property
    def used_fallback(self) -> bool:
        return self.fallbacks > 0

    @property
    def model(self) -> str | None:
        """The model that wrote at least one section, else None."""
        return next((a.model for a in self.analyses if not a.used_fallback), None)

    @property
    def fallback_reason(self) -> str | None:
        """The distinct reasons sections fell back to the template, '; '-joined."""
        reasons = list(dict.fromkeys(a.fallback_reason for a in self.analyses if a.used_fallback and a.fallback_reason))
        return "; ".join(reasons) or None


# --- templates -----------------------------------------------------------------------------------

def _naive(value) -> pd.Timestamp | None:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _earlier_out_of_band(incident: Incident, history: list[dict] | None) -> list[dict]:
    """The periods of ``history`` before the incident that were out of their band."""
    start = _naive(incident.start_period)
    found = []
    for h in history or []:
        at, lo, hi, actual = _naive(h.get("period")), h.get("lower_usd"), h.get("upper_usd"), h.get("actual_usd")
        if None in (lo, hi, actual) or at is None or (start is not None and at >= start):
            continue
        if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi, actual)):
            continue
        if not float(lo) <= float(actual) <= float(hi):
            found.append(h)
    return found


def _template_incident(incident: Incident, history: list[dict] | None) -> IncidentAnalysis:
    """The template's analysis; every figure is one of the data's."""
    impact, actual, expected = float(incident.impact_usd), float(incident.actual_usd), float(incident.expected_usd)
    lo, hi = (float(b) for b in incident.band)
    spike = incident.direction != "drop" and impact >= 0
    where = incident.series_description
    contributors = [c for c in incident.top_contributors if (float(c.delta) > 0) == spike][:3]
    hypotheses = []
    for i, c in enumerate(contributors):
        share = abs(float(c.delta)) / abs(impact) if impact else 0.0
        likelihood = "high" if i == 0 and share >= 0.5 else ("medium" if share >= 0.2 else "low")
        verb = "grew" if spike else "fell"
        hypotheses.append(Hypothesis(
            cause=f"The {c.dimension} `{c.name}` {verb} from {money(float(c.expected))} expected to "
                  f"{money(float(c.actual))}",
            likelihood=likelihood,
            evidence=f"Its change of {money(float(c.delta), signed=True)} against the incident's impact of "
                     f"{money(impact, signed=True)}.",
        ))
    earlier = _earlier_out_of_band(incident, history)
    if incident.periods > 1:
        hypotheses.append(Hypothesis(
            cause="A sustained change in usage (a new workload, a scale-up or a configuration change) rather than a one-off",
            likelihood="medium",
            evidence=f"The incident spans {incident.periods} periods from {incident.start_label} to "
                     f"{incident.latest_label}, {money(float(incident.total_excess_usd), signed=True)} against expected in all.",
        ))
    if earlier:
        last = earlier[-1]
        hypotheses.append(Hypothesis(
            cause="A recurring pattern (a batch job, a schedule or a monthly charge) the forecast does not know yet",
            likelihood="medium" if len(earlier) > 1 else "low",
            evidence=f"Out of its band in {len(earlier)} earlier period(s) of the recent history, most recently "
                     f"{clean(last.get('period'))} at {money(float(last['actual_usd']))}.",
        ))
    flagged = f" Flagged by: {incident.detectors}." if incident.detectors else ""
    if incident.usual:
        flagged += (f" Outside the series' usual range of {money(incident.usual.lower)} – {money(incident.usual.upper)}"
                    f"{f' (a {incident.profile} series)' if incident.profile else ''}, from its own forecast errors.")
    if incident.is_data_gap:
        return _template_gap(incident, where)
    if spike:
        hypotheses.append(Hypothesis(
            cause=f"New or scaled-up resources in {where}" if not contributors else
                  "Other resources of the series grew too (the contributors above may not explain all of it)",
            likelihood="medium" if not contributors else "low",
            evidence=f"Actual {money(actual)} against {money(expected)} expected, above the band's upper bound of "
                     f"{money(hi)}.{flagged}",
        ))
    else:
        hypotheses.append(Hypothesis(
            cause="Usage stopped or moved (a workload shut down, a commitment or credit applied), or the billing export is incomplete",
            likelihood="medium",
            evidence=f"Actual {money(actual)} against {money(expected)} expected, below the band's lower bound of "
                     f"{money(lo)}.{flagged}",
        ))
    hypotheses.append(Hypothesis(cause="A pricing or billing change (a new SKU, an expired discount, a restatement)",
                                 likelihood="low", evidence="Not visible in these figures; check the provider's billing notes."))
    owner = f"team {incident.team}" if incident.team else "the owning team"
    if spike:
        target = f"`{contributors[0].name}` ({where})" if contributors else where
        actions = [f"Ask {owner} whether the increase in {target} is expected.",
                   "If it is not, stop or scale down the resources behind it.",
                   "If it is planned, mark the incident expected in Dagster so it stops alerting."]
        prevention = [f"A budget alert on {where} at the band's upper bound of {money(hi)} per period.",
                      "Owner tags and quotas or autoscaling limits on the resources behind it."]
        savings = max(float(incident.total_excess_usd), 0.0) or max(impact, 0.0)
    else:
        actions = [f"Check that the billing export for {incident.peak_label} is complete.",
                   f"Ask {owner} whether {where} was shut down or moved on purpose."]
        prevention = ["Monitor the billing export's freshness and completeness."]
        savings = 0.0
    summary = (f"{incident.series_description} cost {money(actual)} on {incident.peak_label} against {money(expected)} "
               f"expected ({money(impact, signed=True)}, {float(incident.deviation_pct):+.1f}%), a {incident.direction} "
               f"rated {incident.severity}.")
    return IncidentAnalysis(summary=summary, severity=incident.severity, hypotheses=hypotheses, immediate_actions=actions,
                            prevention=prevention, estimated_savings_usd=round(savings, 2))


def _template_gap(incident: Incident, where: str) -> IncidentAnalysis:
    """A data gap: missing billing rows, for the pipeline's owner; nothing to save."""
    return IncidentAnalysis(
        summary=f"Data gap: {incident.gap_headline}.",
        severity=incident.severity,
        hypotheses=[
            Hypothesis(cause=f"The billing export or integration for {where} stopped delivering its line items",
                       likelihood="high",
                       evidence=f"No line items since {incident.start_label} ({incident.periods} period(s)) while the "
                                f"rest of the bill arrives; {money(-float(incident.total_excess_usd))} was expected."),
            Hypothesis(cause=f"{where} was shut down or moved to another account on purpose", likelihood="low",
                       evidence="A service that ends stops its line items too; this one billed every day before."),
        ],
        immediate_actions=[f"Check the export or integration that delivers {where} (its last delivery, errors, "
                           "permissions).",
                           "Once its rows arrive, the restated periods are scored and the gap resolves."],
        prevention=["Monitor each export's freshness per account and service, not only the bill's."],
        estimated_savings_usd=0.0,
    )


def _severity_rank(incident: Incident) -> int:
    return SEVERITY_LEVELS.index(incident.severity) if incident.severity in SEVERITY_LEVELS else -1


def _template_summary(incidents: list[Incident]) -> RunSummary:
    run = summary_data(incidents)["run"]
    n = len(incidents)
    ranked = sorted(incidents, key=lambda i: (-_severity_rank(i), -abs(float(i.impact_usd))))[:5]
    return RunSummary(
        headline=f"{n} new incident{'' if n == 1 else 's'}, net impact {money(run['net_impact_usd'], signed=True)} against forecast",
        summary="By severity: " + ", ".join(f"{k} {v}" for k, v in run["by_severity"].items())
                + f". Excess across the incidents: {money(run['total_excess_usd'], signed=True)}.",
        priorities=[Priority(incident_id=i.incident_id,
                             reason=f"{i.severity}, impact {money(float(i.impact_usd), signed=True)} "
                                    f"({float(i.deviation_pct):+.1f}%), {money(float(i.total_excess_usd), signed=True)} "
                                    f"over {i.periods} period(s)") for i in ranked],
    )


# --- rendering -----------------------------------------------------------------------------------

def _line(text) -> str:
    """One line of model or billing text: newlines folded, so it cannot add headings or sections."""
    return " ".join(str(text).split())


def _footer(model: str | None, reason: str | None) -> str:
    return f"_Template ({reason})._" if reason else f"_Written by {model}; every dollar figure checked against the data._"


def numbers_line(incident: Incident) -> str:
    i = incident
    return (f"Actual {money(i.actual_usd)} vs expected {money(i.expected_usd)} (band {money(i.band.lower)} – "
            f"{money(i.band.upper)}); impact {money(i.impact_usd, signed=True)} ({i.deviation_pct:+.1f}%), "
            f"{i.direction}, team {i.team or '-'}; incident of {i.periods} period(s) from "
            f"{i.start_label} to {i.latest_label}, {money(i.total_excess_usd, signed=True)} against expected "
            f"in all, {i.status}.")


def render_incident(incident: Incident, analysis: IncidentAnalysis, model: str | None, reason: str | None) -> str:
    """An incident's section: heading (severity, series, period), the figures from the data, then
    the analysis (hypotheses ranked high to low likelihood, actions, prevention, savings)."""
    hypotheses = sorted(analysis.hypotheses, key=lambda h: LIKELIHOODS.index(h.likelihood))  # stable
    parts = [f"## [{incident.severity.upper()}] {_line(incident.series_description)} on {incident.peak_label}",
             "", numbers_line(incident), "", _line(analysis.summary), "", "**Root-cause hypotheses** (most likely first)"]
    parts += [f"{i}. {_line(h.cause)} — likelihood **{h.likelihood}**. {_line(h.evidence)}"
              for i, h in enumerate(hypotheses, 1)]
    parts += ["", "**Immediate actions**", *(f"- {_line(a)}" for a in analysis.immediate_actions)]
    parts += ["", "**Prevention**", *(f"- {_line(p)}" for p in analysis.prevention)]
    parts += ["", f"**Estimated savings:** {money(float(analysis.estimated_savings_usd))}", "", _footer(model, reason), ""]
    return "\n".join(parts)


def render_summary(incidents: list[Incident], summary: RunSummary, model: str | None, reason: str | None) -> str:
    by_id = {i.incident_id: i for i in incidents}
    n = len(incidents)
    parts = [f"# Cost anomaly report: {n} new incident{'' if n == 1 else 's'}", "", f"**{_line(summary.headline)}**",
             "", _line(summary.summary), "", "**Priorities**"]
    for rank, p in enumerate(summary.priorities, 1):
        i = by_id.get(p.incident_id)
        label = f"{_line(i.series_description)} on {i.peak_label} [{i.severity}]" if i else "?"
        parts.append(f"{rank}. `{p.incident_id}` {label}: {_line(p.reason)}")
    parts += ["", _footer(model, reason), ""]
    return "\n".join(parts)


# --- the public entry points ---------------------------------------------------------------------

def template_analysis(incident: Incident, history: list[dict] | None, reason: str, model: str | None = None) -> Analysis:
    """The deterministic analysis of an incident, saying it is a template and why (``model``: the
    model that was tried, if any)."""
    return _template_incident_analysis(incident, history, reason, model, Usage(), (0.0, 0.0))


def template_summary(incidents: list[Incident], reason: str, model: str | None = None) -> Analysis:
    """The deterministic run summary, saying it is a template and why."""
    return _template_summary_analysis(incidents, reason, model, Usage(), (0.0, 0.0))


def _template_incident_analysis(incident, history, reason, model, usage: Usage, pricing) -> Analysis:
    """The template, carrying the usage of the requests that were made before it was needed."""
    template = _template_incident(incident, history)
    return Analysis(incident.incident_id, "incident", render_incident(incident, template, None, reason),
                    None, model, True, reason, usage.prompt_tokens, usage.completion_tokens, usage.cost(pricing),
                    usage.latency_s, usage.requests, template.summary)


def _template_summary_analysis(incidents, reason, model, usage: Usage, pricing) -> Analysis:
    template = _template_summary(incidents)
    return Analysis(None, "summary", render_summary(incidents, template, None, reason), None, model, True,
                    reason, usage.prompt_tokens, usage.completion_tokens, usage.cost(pricing), usage.latency_s,
                    usage.requests, template.summary)


def analyse_incident(incident: Incident, history: list[dict] | None, client: openai.OpenAI | None, model: str,
                     pricing: tuple[float, float] = (0.0, 0.0)) -> Analysis:
    """The LLM's analysis of one incident, validated and grounded; the template when ``client``
    is None, the request fails (after the client's retries), or the reply is still invalid after
    one repair request."""
    if client is None:
        return template_analysis(incident, history, "no LLM configured")
    data = incident_data(incident, history)
    usage = Usage()
    try:
        reply = ask(client, model, ANALYSIS_PROMPT, data, "incident", [incident], usage)
    except RequestFailed as failed:
        return _template_incident_analysis(incident, history, failed.reason, model, usage, pricing)
    return Analysis(incident.incident_id, "incident", render_incident(incident, reply, model, None), reply.model_dump(),
                    model, False, None, usage.prompt_tokens, usage.completion_tokens, usage.cost(pricing),
                    usage.latency_s, usage.requests, reply.summary)


def summarise_run(incidents: list[Incident], client: openai.OpenAI | None, model: str,
                  pricing: tuple[float, float] = (0.0, 0.0)) -> Analysis:
    """The run's summary by the LLM (headline, summary, priorities), validated and grounded like
    an incident's analysis; the template otherwise."""
    if client is None or not incidents:
        return template_summary(incidents, "no LLM configured" if client is None else "no incidents")
    usage = Usage()
    try:
        reply = ask(client, model, SUMMARY_PROMPT, summary_data(incidents), "summary", incidents, usage)
    except RequestFailed as failed:
        return _template_summary_analysis(incidents, failed.reason, model, usage, pricing)
    return Analysis(None, "summary", render_summary(incidents, reply, model, None), reply.model_dump(), model, False,
                    None, usage.prompt_tokens, usage.completion_tokens, usage.cost(pricing), usage.latency_s,
                    usage.requests, reply.summary)


def build_report(incidents: list[Incident], histories: dict[str, list[dict]] | None, client: openai.OpenAI | None,
                 model: str, pricing: tuple[float, float] = (0.0, 0.0), max_llm_incidents: int = 25) -> RunReport:
    """The run's report: the summary, one section per incident (``incidents``, most expensive
    first, as ``incidents_from_rows`` gives them), then the figures table. Only the ``max_llm_incidents`` most
    expensive incidents go to the LLM; once a request fails (the client's retries spent), the rest
    of the run uses the template rather than wait out every retry again."""
    histories = histories or {}
    analyses: list[Analysis] = []
    failed: str | None = None
    for i, incident in enumerate(incidents):
        history = histories.get(incident.incident_id, [])
        if client is not None and failed:
            analysis = template_analysis(incident, history, f"LLM skipped: an earlier request of this run failed ({failed})",
                                         model)
        elif client is not None and i >= max_llm_incidents:
            analysis = template_analysis(incident, history, f"LLM budget: only the {max_llm_incidents} most expensive "
                                                            "incidents are analysed by the LLM", model)
        else:
            analysis = analyse_incident(incident, history, client, model, pricing)
            if analysis.fallback_reason and analysis.fallback_reason.startswith("LLM request failed"):
                failed = analysis.fallback_reason.removeprefix("LLM request failed: ")
        analyses.append(analysis)
    if client is not None and failed:
        summary = template_summary(incidents, f"LLM skipped: an earlier request of this run failed ({failed})", model)
    else:
        summary = summarise_run(incidents, client, model, pricing)
    analyses.insert(0, summary)
    markdown = ("\n".join(a.markdown for a in analyses) + "\n## Figures\n\n" + figures_table(incidents) + "\n"
                + findings_list(incidents) + ("\n" if any(i.findings for i in incidents) else ""))
    return RunReport(
        markdown=markdown,
        analyses=analyses,
        prompt_tokens=sum(a.prompt_tokens for a in analyses),
        completion_tokens=sum(a.completion_tokens for a in analyses),
        cost_usd=sum(a.cost_usd for a in analyses),
        latency_s=sum(a.latency_s for a in analyses),
        fallbacks=sum(a.used_fallback for a in analyses),
    )
