-- An incident's series: usage cost per period of [$1, $2) at the grain's cost mart, for the
-- series' own columns ({filters}).
SELECT {period} AS period, sum(effective_cost) AS cost FROM {cost_table}
WHERE charge_category = 'Usage' AND {period} >= $1 AND {period} < $2 {filters}
GROUP BY 1
