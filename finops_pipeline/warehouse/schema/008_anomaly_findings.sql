-- What a rule saw in its own figures (the AI rules: "cached share of input 3% against 70%"), as a
-- JSON list of sentences; NULL where no rule said more than the dollars.
ALTER TABLE anomalies ADD COLUMN findings JSON;
