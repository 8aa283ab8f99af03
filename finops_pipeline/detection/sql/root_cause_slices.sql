-- Usage cost by the dimensions {names} for the anomalies' series and periods in _wanted
-- (each anomaly's period and the same point of the four weeks before).
SELECT w._row, w._lag, {names}, sum(c.effective_cost)::DOUBLE AS cost
FROM {table} c JOIN _wanted w ON c.{period} = w._period::{period_type}{on}
WHERE c.charge_category = 'Usage'
GROUP BY ALL
