-- FOCUS 1.2 columns the AI API sources fill: ServiceSubcategory ("Generative AI") and SkuMeter
-- ("Input Tokens", "Output Tokens", ...). Other sources leave them NULL unless their files have them.
ALTER TABLE raw_billing ADD COLUMN "ServiceSubcategory" VARCHAR;
ALTER TABLE raw_billing ADD COLUMN "SkuMeter" VARCHAR;
