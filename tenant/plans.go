package tenant

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
)

// Plan is a billing plan assigned to applications.
type Plan struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	MonthlyQuota int64  `json:"monthly_quota"` // successful deliveries per calendar month (UTC); 0 = unlimited
	MaxEndpoints int    `json:"max_endpoints"` // 0 = unlimited
	RateLimit    int    `json:"rate_limit"`    // max events/s per endpoint; 0 = unlimited
	// RetentionDays keeps the plan's messages this many days instead of
	// retention.messages (0); older ones answer 410 past_retention.
	RetentionDays int `json:"retention_days"`
	// MaxStored caps an application's stored messages plus attempts (0 =
	// unlimited); at the cap new messages are held as quota_exceeded.
	MaxStored int64     `json:"max_stored"`
	CreatedAt time.Time `json:"created_at"`
}

// PlanUpdate changes a plan; nil leaves a field alone.
type PlanUpdate struct {
	Name         *string
	MonthlyQuota *int64
	MaxEndpoints *int
	RateLimit    *int
	// RetentionDays and MaxStored: see Plan.
	RetentionDays *int
	MaxStored     *int64
}

var planIDRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// Upper bounds of plan fields. max_endpoints and rate_limit are Postgres
// integers (int4), so a larger value failed the insert with a 500; the
// bounds are far above any real plan and inside every column and counter
// that holds them (monthly_quota is compared with usage sums in bigint).
const (
	MaxPlanQuota     = 1_000_000_000_000 // deliveries a month
	MaxPlanEndpoints = 1_000_000         // endpoints per application
	MaxPlanRateLimit = 1_000_000         // events/s per endpoint
	MaxPlanRetention = 3650              // days (the column's CHECK)
	MaxPlanStored    = 1 << 50           // rows (messages plus attempts)
)

// validateStorage checks the plan's retention and storage fields.
func validateStorage(days *int, stored *int64) error {
	fields := map[string]string{}
	if days != nil && (*days < 0 || *days > MaxPlanRetention) {
		fields["retention_days"] = fmt.Sprintf("must be 0 (retention.messages) to %d, got %d", MaxPlanRetention, *days)
	}
	if stored != nil && (*stored < 0 || *stored > MaxPlanStored) {
		fields["max_stored"] = fmt.Sprintf("must be 0 (unlimited) to %d, got %d", int64(MaxPlanStored), *stored)
	}
	if len(fields) > 0 {
		return hook.FieldErrors(fields)
	}
	return nil
}

func validatePlan(name *string, quota *int64, maxEP, rate *int) error {
	fields := map[string]string{}
	if name != nil {
		if n := strings.TrimSpace(*name); n == "" || utf8.RuneCountInString(n) > 100 {
			fields["name"] = "is required and at most 100 characters"
		}
	}
	if quota != nil && (*quota < 0 || *quota > MaxPlanQuota) {
		fields["monthly_quota"] = fmt.Sprintf("must be 0 (unlimited) to %d, got %d", int64(MaxPlanQuota), *quota)
	}
	if maxEP != nil && (*maxEP < 0 || *maxEP > MaxPlanEndpoints) {
		fields["max_endpoints"] = fmt.Sprintf("must be 0 (unlimited) to %d, got %d", MaxPlanEndpoints, *maxEP)
	}
	if rate != nil && (*rate < 0 || *rate > MaxPlanRateLimit) {
		fields["rate_limit"] = fmt.Sprintf("must be 0 (unlimited) to %d, got %d", MaxPlanRateLimit, *rate)
	}
	if len(fields) > 0 {
		return hook.FieldErrors(fields)
	}
	return nil
}

const planCols = `p.id, p.name, p.monthly_quota, p.max_endpoints, p.rate_limit, p.retention_days, p.max_stored, p.created_at`

func scanPlan(row pgx.Row) (Plan, error) {
	var p Plan
	err := row.Scan(&p.ID, &p.Name, &p.MonthlyQuota, &p.MaxEndpoints, &p.RateLimit, &p.RetentionDays, &p.MaxStored, &p.CreatedAt)
	return p, err
}

// CreatePlan adds a plan (admins only). An empty id is generated.
func (s *Store) CreatePlan(ctx context.Context, scope hook.Scope, p Plan) (Plan, error) {
	if err := requireAdmin(scope, "create plan"); err != nil {
		return Plan{}, err
	}
	if p.ID == "" {
		p.ID = strings.ToLower(NewID("plan"))
	} else if !planIDRe.MatchString(p.ID) {
		return Plan{}, invalid("id", "must be 1-40 lower-case letters, digits, '-' or '_'")
	}
	if err := validatePlan(&p.Name, &p.MonthlyQuota, &p.MaxEndpoints, &p.RateLimit); err != nil {
		return Plan{}, err
	}
	if err := validateStorage(&p.RetentionDays, &p.MaxStored); err != nil {
		return Plan{}, err
	}
	out, err := scanPlan(s.pool.QueryRow(ctx, `INSERT INTO plans AS p (id, name, monthly_quota, max_endpoints, rate_limit, retention_days, max_stored)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+planCols, p.ID, strings.TrimSpace(p.Name), p.MonthlyQuota, p.MaxEndpoints, p.RateLimit,
		p.RetentionDays, p.MaxStored))
	if isUnique(err) {
		return Plan{}, fmt.Errorf("plan %q already exists: %w", p.ID, hook.ErrConflict)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("create plan: %w", err)
	}
	return out, nil
}

// GetPlan returns a plan; every authenticated caller may read plans.
func (s *Store) GetPlan(ctx context.Context, id string) (Plan, error) {
	p, err := scanPlan(s.pool.QueryRow(ctx, `SELECT `+planCols+` FROM plans p WHERE p.id = $1`, id))
	return oneRow(p, err, "get plan", "plan", id)
}

// ListPlans lists plans in id order; name filters by substring.
func (s *Store) ListPlans(ctx context.Context, name, cursor string, limit int) ([]Plan, string, error) {
	l, err := newList(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	l.afterID("p.id")
	l.contains("p.name", name)
	q := `SELECT ` + planCols + ` FROM plans p WHERE ` + l.sql() + ` ORDER BY p.id LIMIT ` + l.limitArg()
	return queryPage(ctx, s.pool, "list plans", q, l.args, l.limit, scanPlan, func(p Plan) string { return p.ID })
}

// UpdatePlan changes a plan (admins only). A raised quota takes effect for
// every application on the plan; ReleaseAll then sends their held messages.
func (s *Store) UpdatePlan(ctx context.Context, scope hook.Scope, id string, u PlanUpdate) (Plan, error) {
	if err := requireAdmin(scope, "update plan"); err != nil {
		return Plan{}, err
	}
	if err := validatePlan(u.Name, u.MonthlyQuota, u.MaxEndpoints, u.RateLimit); err != nil {
		return Plan{}, err
	}
	if err := validateStorage(u.RetentionDays, u.MaxStored); err != nil {
		return Plan{}, err
	}
	if u.Name != nil {
		n := strings.TrimSpace(*u.Name)
		u.Name = &n
	}
	p, err := scanPlan(s.pool.QueryRow(ctx, `UPDATE plans p SET name = COALESCE($2, p.name),
			monthly_quota = COALESCE($3, p.monthly_quota), max_endpoints = COALESCE($4, p.max_endpoints),
			rate_limit = COALESCE($5, p.rate_limit), retention_days = COALESCE($6, p.retention_days),
			max_stored = COALESCE($7, p.max_stored)
		WHERE p.id = $1 RETURNING `+planCols, id, u.Name, u.MonthlyQuota, u.MaxEndpoints, u.RateLimit, u.RetentionDays, u.MaxStored))
	if p, err = oneRow(p, err, "update plan", "plan", id); err != nil {
		return Plan{}, err
	}
	s.quota.reset()
	return p, nil
}

// EndpointAllowance returns the plan's endpoint cap for appID (0 =
// unlimited) and how many endpoints the application has, for the endpoint
// service to enforce max_endpoints. No scope check: callers check Visible.
func (s *Store) EndpointAllowance(ctx context.Context, appID string) (max, used int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT p.max_endpoints, (SELECT count(*) FROM endpoints e WHERE e.app_id = a.id)
		FROM applications a JOIN plans p ON p.id = a.plan_id WHERE a.id = $1`, appID).Scan(&max, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, hook.NotFound("application", appID)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("endpoint allowance of %s: %w", appID, err)
	}
	return max, used, nil
}
