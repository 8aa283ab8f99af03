-- Each period's calibrated alert bounds and its series' profile (see detection.calibration),
-- on the horizon-0 rows of cost_forecasts; the anomaly rows carry the bounds they were judged by.
ALTER TABLE cost_forecasts ADD COLUMN profile VARCHAR;          -- steady, weekly, bursty, intermittent, sparse
ALTER TABLE cost_forecasts ADD COLUMN alert_lower DOUBLE;       -- the period's cost pages below this
ALTER TABLE cost_forecasts ADD COLUMN alert_upper DOUBLE;       -- ... and above this
ALTER TABLE cost_forecasts ADD COLUMN span_expected DOUBLE;     -- expected cost of the span ending at the period (a week of days, a day of hours)
ALTER TABLE cost_forecasts ADD COLUMN span_alert_lower DOUBLE;  -- the span's cost is unusual below this
ALTER TABLE cost_forecasts ADD COLUMN span_alert_upper DOUBLE;  -- ... and above this
ALTER TABLE cost_forecasts ADD COLUMN active_cost DOUBLE;       -- a period above this runs a job (intermittent series)
ALTER TABLE cost_forecasts ADD COLUMN span_active_limit INTEGER; -- this many job periods in a span is not the series' habit
ALTER TABLE cost_forecasts ADD COLUMN job_upper DOUBLE;         -- intermittent series: a job above this is not its usual size

ALTER TABLE anomalies ADD COLUMN profile VARCHAR;
ALTER TABLE anomalies ADD COLUMN alert_lower DOUBLE;
ALTER TABLE anomalies ADD COLUMN alert_upper DOUBLE;
ALTER TABLE anomalies ADD COLUMN span_usual BOOLEAN;  -- the span ending at it cost within its calibrated range (NULL: unknown)

-- cost, or data_gap: a series without line items while the rest of its bill arrives (see
-- detection.incidents.summarize); a data gap is routed to the pipeline's owner.
ALTER TABLE incidents ADD COLUMN signal VARCHAR DEFAULT 'cost';

-- Per series profile, the pages the calibration allows against the pages sent (see
-- detection.quality): whether the noise model holds on this bill.
CREATE TABLE IF NOT EXISTS detection_quality (
    granularity VARCHAR,
    profile VARCHAR,
    series INTEGER,
    series_months DOUBLE,
    allowed_pages_per_series_month DOUBLE,  -- 2 × false_pages_per_year ÷ 12: the ceiling the bounds allow
    pages INTEGER,                           -- cost incidents at warning or above that nothing else explains
    pages_per_series_month DOUBLE,
    not_an_issue INTEGER                     -- of those pages, how many people answered "not an issue"
);
