-- The tables that quality_rules.odcs.yaml checks. contract_test.cpp runs this script
-- in a fresh in-memory DuckDB, then checks each schema object against the table of
-- the same name.
--
-- payments: 10 rows. amount has 2 NULLs; status has 1 NULL, values paid x5, open x2,
-- void, refunded; currency has one '' and one 'N/A'; id 8 appears twice; ref has one
-- NULL and one value ('bad') that does not match ^[AB]-[0-9]+$.
CREATE TABLE payments (id INTEGER, status VARCHAR, currency VARCHAR, amount DECIMAL(12,2),
                       ref VARCHAR);
INSERT INTO payments VALUES
  (1, 'paid',     'EUR', 10.0, 'A-1'),
  (2, 'paid',     'EUR', 20.0, 'A-2'),
  (3, 'open',     'USD', NULL, 'A-3'),
  (4, 'void',     '',    30.0, 'B-4'),
  (5, NULL,       'N/A', 40.0, 'bad'),
  (6, 'paid',     'EUR', 50.0, NULL),
  (7, 'paid',     'EUR', 60.0, 'A-7'),
  (8, 'open',     'USD', 70.0, 'A-8'),
  (8, 'paid',     'EUR', 80.0, 'A-9'),
  (9, 'refunded', 'GBP', NULL, 'A-10');

-- empty: no rows at all, so every count is 0 and percentages are 0.
CREATE TABLE empty (id INTEGER, label VARCHAR);
