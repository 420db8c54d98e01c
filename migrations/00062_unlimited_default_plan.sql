-- +goose Up
-- A self-hosted operator is not a free-tier customer: new applications get
-- the operator's admin.default_plan, which is this plan unless configured
-- otherwise. Existing applications keep their plan.
INSERT INTO plans (id, name, monthly_quota, max_endpoints, rate_limit)
VALUES ('unlimited', 'Unlimited', 0, 0, 0)
ON CONFLICT (id) DO NOTHING;
ALTER TABLE applications ALTER COLUMN plan_id SET DEFAULT 'unlimited';

-- When the application first reached its quota in this month, so the
-- operator is told once a month (one log line), not once per held message.
ALTER TABLE usage ADD COLUMN quota_reached_at timestamptz;

-- +goose Down
ALTER TABLE usage DROP COLUMN quota_reached_at;
ALTER TABLE applications ALTER COLUMN plan_id SET DEFAULT 'free';
-- The plan stays if applications still use it (it was created by Up or by an admin).
DELETE FROM plans p WHERE p.id = 'unlimited'
    AND NOT EXISTS (SELECT 1 FROM applications a WHERE a.plan_id = p.id);
