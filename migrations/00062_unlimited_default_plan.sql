-- +goose Up
-- A self-hosted operator is not a free-tier customer: new applications get
-- the operator's admin.default_plan, which is this plan unless configured
-- otherwise. Existing applications keep their plan.
INSERT INTO plans (id, name, monthly_quota, max_endpoints, rate_limit)
VALUES ('unlimited', 'Unlimited', 0, 0, 0)
ON CONFLICT (id) DO NOTHING;
ALTER TABLE applications ALTER COLUMN plan_id SET DEFAULT 'unlimited';

-- The demo application `serve --all` seeds on the devnet (found by its
-- endpoint, as app/demo.go finds it) was created on 'free' (10/s, 10,000 a
-- month) and stalled after ~18 minutes of the devnet's ~12 Transfers/s.
-- Its held messages are released by the admin module's release pass.
UPDATE applications a SET plan_id = 'unlimited', updated_at = now()
WHERE a.plan_id = 'free' AND a.name = 'demo' AND EXISTS (
    SELECT 1 FROM endpoints e WHERE e.app_id = a.id
        AND e.description = 'demo: devnet ERC-20 Transfers to the built-in receiver');

-- When the application first reached its quota in this month, so the
-- operator is told once a month (one log line), not once per held message.
ALTER TABLE usage ADD COLUMN quota_reached_at timestamptz;

-- +goose Down
ALTER TABLE usage DROP COLUMN quota_reached_at;
ALTER TABLE applications ALTER COLUMN plan_id SET DEFAULT 'free';
UPDATE applications a SET plan_id = 'free' WHERE a.plan_id = 'unlimited' AND a.name = 'demo' AND EXISTS (
    SELECT 1 FROM endpoints e WHERE e.app_id = a.id
        AND e.description = 'demo: devnet ERC-20 Transfers to the built-in receiver');
-- The plan stays if applications still use it (it was created by Up or by an admin).
DELETE FROM plans p WHERE p.id = 'unlimited'
    AND NOT EXISTS (SELECT 1 FROM applications a WHERE a.plan_id = p.id);
