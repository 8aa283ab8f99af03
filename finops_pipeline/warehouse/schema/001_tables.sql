-- The pipeline's own tables (the dbt models make the rest). Applied once, in order, by
-- warehouse.migrations; a later change is a new numbered file, never an edit of this one.

-- FOCUS line items as loaded, one row per line item, with where each came from (x_Source,
-- x_SourceFile, x_SourceRow) and the provider's own x_ columns packed as JSON.
CREATE TABLE IF NOT EXISTS raw_billing (
    "BillingAccountId" VARCHAR,
    "BillingAccountName" VARCHAR,
    "BillingAccountType" VARCHAR,
    "SubAccountId" VARCHAR,
    "SubAccountName" VARCHAR,
    "SubAccountType" VARCHAR,
    "BillingPeriodStart" TIMESTAMPTZ,
    "BillingPeriodEnd" TIMESTAMPTZ,
    "ChargePeriodStart" TIMESTAMPTZ,
    "ChargePeriodEnd" TIMESTAMPTZ,
    "BilledCost" DECIMAL(18, 6),
    "EffectiveCost" DECIMAL(18, 6),
    "ListCost" DECIMAL(18, 6),
    "ContractedCost" DECIMAL(18, 6),
    "BillingCurrency" VARCHAR,
    "ProviderName" VARCHAR,
    "PublisherName" VARCHAR,
    "InvoiceIssuerName" VARCHAR,
    "ServiceName" VARCHAR,
    "ServiceCategory" VARCHAR,
    "RegionId" VARCHAR,
    "RegionName" VARCHAR,
    "ResourceId" VARCHAR,
    "ResourceName" VARCHAR,
    "ResourceType" VARCHAR,
    "SkuId" VARCHAR,
    "SkuPriceId" VARCHAR,
    "ChargeCategory" VARCHAR,
    "ChargeClass" VARCHAR,
    "ChargeDescription" VARCHAR,
    "ChargeFrequency" VARCHAR,
    "PricingCategory" VARCHAR,
    "PricingQuantity" DECIMAL(18, 6),
    "PricingUnit" VARCHAR,
    "ConsumedQuantity" DECIMAL(18, 6),
    "ConsumedUnit" VARCHAR,
    "CommitmentDiscountId" VARCHAR,
    "CommitmentDiscountStatus" VARCHAR,
    "Tags" JSON,
    "x_Source" VARCHAR,
    "x_SourceFile" VARCHAR,
    "x_SourceRow" BIGINT,
    "x_ProviderColumns" JSON
);

CREATE TABLE IF NOT EXISTS raw_billing_quarantine (
    quarantined_at TIMESTAMPTZ,
    partition_start TIMESTAMPTZ,
    partition_end TIMESTAMPTZ,
    source VARCHAR,
    file VARCHAR,
    row_number BIGINT,
    column_name VARCHAR,
    reason VARCHAR,
    row_values JSON  -- the row as the file had it, every column as text
);

CREATE TABLE IF NOT EXISTS cost_forecasts (
    granularity VARCHAR,  -- daily or hourly
    forecast_period TIMESTAMPTZ,  -- the partition period the forecast was made for
    target_period TIMESTAMPTZ,
    horizon INTEGER,  -- target_period - forecast_period, in periods
    series_key VARCHAR,
    series_level VARCHAR,
    provider VARCHAR,
    sub_account_id VARCHAR,
    service_name VARCHAR,
    expected_cost DOUBLE,
    lower_bound DOUBLE,
    upper_bound DOUBLE,
    model VARCHAR,
    trained_through TIMESTAMPTZ,  -- the last period the fit saw
    training_periods INTEGER
);

-- One row per Prophet fit: its window's predictions, for the runs of the days after its refit
-- anchor to reuse instead of fitting again (see detection.forecasting.Fits).
CREATE TABLE IF NOT EXISTS forecast_fits (
    fit_key VARCHAR,  -- a hash of everything the fit depends on: its training data, anchor and settings
    granularity VARCHAR,
    anchor TIMESTAMPTZ,  -- the refit anchor: its first predicted period
    series_key VARCHAR,  -- the series it was first fitted for (identical series share a fit)
    model VARCHAR,
    training_periods INTEGER,
    expected_cost DOUBLE[],  -- one per period from the anchor
    lower_bound DOUBLE[],
    upper_bound DOUBLE[],
    fitted_at TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS anomalies (
    anomaly_id VARCHAR PRIMARY KEY,
    period_start TIMESTAMPTZ,
    granularity VARCHAR,  -- daily or hourly
    series_level VARCHAR,
    series_key VARCHAR,
    provider VARCHAR,
    sub_account_id VARCHAR,
    sub_account_name VARCHAR,
    service_name VARCHAR,
    team VARCHAR,
    direction VARCHAR,
    actual_cost DOUBLE,
    expected_cost DOUBLE,
    lower_bound DOUBLE,
    upper_bound DOUBLE,
    impact_usd DOUBLE,
    deviation_pct DOUBLE,
    robust_z DOUBLE,
    severity VARCHAR,
    detectors VARCHAR,
    top_contributors JSON,  -- the root cause's first dimension: resources for a service, sub-account × service for the total
    root_cause JSON,  -- {dimension: top 3 items by change, with actual, expected, delta}
    detected_at TIMESTAMPTZ,
    incident_id VARCHAR,  -- the anomaly_id of the first anomaly of its run (see detection.incidents)
    status VARCHAR,  -- NULL, or a person's answer on its incident: expected, planned, not_an_issue
    -- The anomaly of a finer series, same period and direction, carrying at least half its $
    -- impact (see detection.series.explained_by): NULL for the anomalies worth their own alert.
    explained_by VARCHAR
);

CREATE TABLE IF NOT EXISTS incidents (
    incident_id VARCHAR PRIMARY KEY,
    granularity VARCHAR,  -- daily or hourly
    series_level VARCHAR,
    series_key VARCHAR,
    provider VARCHAR,
    sub_account_id VARCHAR,
    sub_account_name VARCHAR,
    service_name VARCHAR,
    team VARCHAR,
    direction VARCHAR,
    start_period TIMESTAMPTZ,
    peak_period TIMESTAMPTZ,
    latest_period TIMESTAMPTZ,
    periods INTEGER,
    total_excess_usd DOUBLE,
    peak_anomaly_id VARCHAR,
    severity VARCHAR,  -- the highest any of its periods reached
    status VARCHAR,  -- open, or resolved (a later period was back in its band)
    feedback VARCHAR,  -- NULL, or expected, planned, not_an_issue (see defs.feedback)
    explained_by VARCHAR  -- the finer incident that explains its peak; such an incident sends no alert of its own
);

CREATE TABLE IF NOT EXISTS incident_feedback (
    incident_id VARCHAR,
    series_key VARCHAR,
    start_period TIMESTAMPTZ,  -- the incident as it stood when answered
    latest_period TIMESTAMPTZ,
    verdict VARCHAR,  -- expected, planned or not_an_issue
    note VARCHAR,
    given_by VARCHAR,
    given_at TIMESTAMPTZ
);

CREATE TABLE IF NOT EXISTS alert_ledger (
    anomaly_id VARCHAR PRIMARY KEY,
    report_id VARCHAR,
    destination VARCHAR,  -- slack or outbox
    channel VARCHAR,
    message_ref VARCHAR,  -- Slack message ts, or the outbox file
    sent_at TIMESTAMPTZ,
    status VARCHAR,  -- sent, updated (re-scored to other figures) or withdrawn (no longer an anomaly)
    revision INTEGER,
    announced JSON,  -- the figures last announced
    updated_at TIMESTAMPTZ,
    head_message_id VARCHAR  -- the alert_outbox row of the alert's first message (its thread's head)
);

-- The transactional outbox: every message is written here, in the transaction that decides to
-- send it, before anything is sent; delivery then moves it pending → sending → sent. A crash
-- mid-send leaves it `sending`, and the next delivery looks it up in Slack before sending again.
CREATE TABLE IF NOT EXISTS alert_outbox (
    message_id VARCHAR PRIMARY KEY,  -- a hash of what it is for: incident, kind, revision
    seq BIGINT,  -- enqueue order: a thread's head goes before its replies
    incident_id VARCHAR,
    kind VARCHAR,  -- alert (a thread's head), update (edit of the head), reply (in its thread), chart, digest
    head_message_id VARCHAR,  -- for update, reply and chart: the alert they belong to
    destination VARCHAR,  -- slack, or outbox (files, when Slack is not configured)
    channel VARCHAR,  -- as routed: a name (#finops) or an id
    payload JSON,  -- text and blocks, or the chart's file name and title
    chart_path VARCHAR,
    status VARCHAR,  -- pending, sending or sent
    attempts INTEGER,
    last_error VARCHAR,
    next_attempt_at TIMESTAMPTZ,
    enqueued_at TIMESTAMPTZ,
    sending_since TIMESTAMPTZ,
    sent_at TIMESTAMPTZ,
    channel_id VARCHAR,  -- the id Slack answered with
    message_ref VARCHAR  -- the Slack ts (the file id for a chart), or the outbox file
);

CREATE TABLE IF NOT EXISTS anomaly_reports (
    row_id VARCHAR PRIMARY KEY,  -- report_id:run, or report_id:<incident_id>
    report_id VARCHAR,  -- one per alert run with something to report
    kind VARCHAR,  -- run (the summary, and the whole report as markdown) or incident (its analysis)
    incident_id VARCHAR,
    created_at TIMESTAMPTZ,
    anomaly_ids JSON,  -- the incidents the report covers
    model VARCHAR,
    used_fallback BOOLEAN,
    fallback_reason VARCHAR,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    cost_usd DOUBLE,
    latency_s DOUBLE,
    requests INTEGER,
    summary VARCHAR,  -- one paragraph, shown in the Slack alert
    analysis JSON,  -- the validated structured reply (hypotheses, actions, prevention, savings), NULL for a template
    markdown VARCHAR
);
