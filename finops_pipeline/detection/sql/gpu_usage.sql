-- Each GPU's periods in [$1, $2) (gpu_hours, summed to the grain's period): its cost, the cost of
-- its hours whose idle streak reached $3 minutes (at its price a minute, for the idle minutes of
-- those hours), idle and absent minutes, and its longest idle streak.
SELECT {period} AS period, provider, sub_account_id, service_name, resource_id,
       sum(effective_cost)::DOUBLE AS cost,
       sum(CASE WHEN idle_streak_minutes >= $3 AND gpu_hours > 0
                THEN effective_cost * idle_minutes / (gpu_hours * 60) ELSE 0 END)::DOUBLE AS idle_cost,
       sum(CASE WHEN idle_streak_minutes >= $3 THEN idle_minutes ELSE 0 END)::INTEGER AS idle_minutes,
       max(idle_streak_minutes)::INTEGER AS idle_streak_minutes,
       sum(absent_minutes)::INTEGER AS absent_minutes
FROM gpu_hours
WHERE {period} >= $1 AND {period} < $2
GROUP BY ALL
ORDER BY period, provider, sub_account_id, service_name, resource_id
