-- Payments stuck in "pending" for more than 30 minutes: the payment webhook or the
-- purchase-worker is not completing them. Referenced from services.yaml:
--
--   datastores:
--     postgres:
--       sql_checks:
--         stale_pending_payments: {file: checks/pending_payments_stale.sql, warn: 1, crit: 20}
--
-- A .sql probe returns one number; opsdash runs it in a read-only transaction and compares
-- it with warn/crit (at or above).
SELECT count(*)
  FROM payments
 WHERE status = 'pending'
   AND created_at < now() - interval '30 minutes'
