-- An incident's series: its cost per period of [$1, $2), from the grain's view of every series.
SELECT period, cost FROM {series_model}
WHERE series_key = $3 AND period >= $1 AND period < $2
