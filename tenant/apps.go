package tenant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
	"github.com/ethhook/ethhook/msgstate"
)

// DefaultPlanID is the plan a new application gets when none is named and
// the operator configured no other (admin.default_plan): a self-hosted
// operator is not a free-tier customer, so out of the box nothing is capped.
const DefaultPlanID = "unlimited"

// Application is a tenant: it owns endpoints, messages, API keys and usage.
type Application struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	PlanID    string    `json:"plan_id"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ApplicationFilter narrows ListApplications.
type ApplicationFilter struct {
	Name   string // case-insensitive substring of the name
	PlanID string // exact plan id
}

// ApplicationUpdate holds the fields to change; nil leaves a field alone.
type ApplicationUpdate struct {
	Name   *string
	PlanID *string
}

func validateAppName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return invalid("name", "is required")
	}
	if utf8.RuneCountInString(name) > 200 {
		return invalid("name", "must be at most 200 characters")
	}
	return nil
}

const appCols = `a.id, a.name, a.plan_id, a.created_at, a.updated_at`

func scanApp(row pgx.Row) (Application, error) {
	var a Application
	err := row.Scan(&a.ID, &a.Name, &a.PlanID, &a.CreatedAt, &a.UpdatedAt)
	return a, err
}

// ErrAppLimit means the member may create no more applications
// (admin.max_apps_per_user).
var ErrAppLimit = errors.New("application limit reached")

// LimitAppsPerUser caps the applications a member may create at n, counted
// as the applications the member belongs to (so deleting one, or leaving
// it, frees a place); 0 means no cap. Admins are never capped: they create
// applications for others. It returns s for chaining after New.
func (s *Store) LimitAppsPerUser(n int) *Store {
	s.maxApps = n
	return s
}

// WithDefaultPlan makes id the plan of new applications that name none
// (admin.default_plan); empty keeps DefaultPlanID. Check it exists with
// CheckDefaultPlan. It returns s for chaining after New.
func (s *Store) WithDefaultPlan(id string) *Store {
	if id != "" {
		s.defaultPlan = id
	}
	return s
}

// DefaultPlan is the plan new applications get when they name none.
func (s *Store) DefaultPlan() string {
	if s.defaultPlan == "" {
		return DefaultPlanID
	}
	return s.defaultPlan
}

// CheckDefaultPlan fails, naming the setting and the plans there are, when
// the default plan does not exist, so a typo stops the process at start
// instead of failing every application create.
func (s *Store) CheckDefaultPlan(ctx context.Context) error {
	id := s.DefaultPlan()
	_, err := s.GetPlan(ctx, id)
	if err == nil {
		return nil
	}
	if !errors.Is(err, hook.ErrNotFound) {
		return fmt.Errorf("check admin.default_plan: %w", err)
	}
	var ids []string
	rows, qerr := s.pool.Query(ctx, `SELECT id FROM plans ORDER BY id`)
	if qerr == nil {
		ids, qerr = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if qerr != nil {
		return fmt.Errorf("admin.default_plan (ETHHOOK_ADMIN_DEFAULT_PLAN)=%q: no such plan", id)
	}
	return fmt.Errorf("admin.default_plan (ETHHOOK_ADMIN_DEFAULT_PLAN)=%q: no such plan; plans are: %s (create one with POST /api/v1/plans)",
		id, strings.Join(ids, ", "))
}

// CreateApplication creates an application. Admins may name any plan
// (empty = the default plan, see WithDefaultPlan); members get the default plan and become members
// of the new application, up to LimitAppsPerUser; API keys cannot create
// applications.
func (s *Store) CreateApplication(ctx context.Context, scope hook.Scope, name, planID string) (Application, error) {
	if !scope.Admin && scope.UserID == "" {
		return Application{}, fmt.Errorf("create application: %w", ErrKeyCannotManageApps)
	}
	if err := validateAppName(name); err != nil {
		return Application{}, err
	}
	name = strings.TrimSpace(name)
	if planID == "" {
		planID = s.DefaultPlan()
	}
	if !scope.Admin && planID != s.DefaultPlan() {
		return Application{}, invalid("plan_id", "only an admin can choose a plan")
	}
	var app Application
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if !scope.Admin && s.maxApps > 0 {
			// Lock the user's row so two creates cannot both pass the cap,
			// then count in a second statement: under READ COMMITTED each
			// statement takes a new snapshot, so the count sees the
			// memberships committed by whoever held the lock before us (a
			// count in the locking statement would use the snapshot taken
			// before it waited).
			var uid string
			err := tx.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR UPDATE`, scope.UserID).Scan(&uid)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("create application: no user %s: %w", scope.UserID, ErrKeyCannotManageApps)
			}
			if err != nil {
				return fmt.Errorf("lock user %s: %w", scope.UserID, err)
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM application_members WHERE user_id = $1`, scope.UserID).Scan(&n); err != nil {
				return fmt.Errorf("count applications of %s: %w", scope.UserID, err)
			}
			if n >= s.maxApps {
				return fmt.Errorf("%w: you are a member of %d applications and admin.max_apps_per_user allows %d; delete one or ask an admin to create it",
					ErrAppLimit, n, s.maxApps)
			}
		}
		var err error
		app, err = scanApp(tx.QueryRow(ctx,
			`INSERT INTO applications AS a (id, name, plan_id) VALUES ($1, $2, $3) RETURNING `+appCols,
			NewID("app"), name, planID))
		if err != nil {
			return err
		}
		if !scope.Admin {
			_, err = tx.Exec(ctx, `INSERT INTO application_members (app_id, user_id) VALUES ($1, $2)`, app.ID, scope.UserID)
		}
		return err
	})
	if isFK(err) {
		return Application{}, invalid("plan_id", fmt.Sprintf("plan %q does not exist", planID))
	}
	if errors.Is(err, ErrAppLimit) || errors.Is(err, hook.ErrForbidden) {
		return Application{}, err
	}
	if err != nil {
		return Application{}, fmt.Errorf("create application: %w", err)
	}
	return app, nil
}

// ListApplications lists the applications visible to scope in creation
// order, limit at a time (0 = DefaultLimit); the returned cursor fetches the
// next page and is empty on the last.
func (s *Store) ListApplications(ctx context.Context, scope hook.Scope, cursor string, limit int) ([]Application, string, error) {
	return s.FindApplications(ctx, scope, ApplicationFilter{}, cursor, limit)
}

// FindApplications is ListApplications with filters.
func (s *Store) FindApplications(ctx context.Context, scope hook.Scope, f ApplicationFilter, cursor string, limit int) ([]Application, string, error) {
	l, err := newList(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	l.scope(scope, "a.id")
	l.afterID("a.id")
	l.contains("a.name", f.Name)
	l.equals("a.plan_id", f.PlanID)
	q := `SELECT ` + appCols + ` FROM applications a WHERE ` + l.sql() + ` ORDER BY a.id LIMIT ` + l.limitArg()
	return queryPage(ctx, s.pool, "list applications", q, l.args, l.limit, scanApp, func(a Application) string { return a.ID })
}

// GetApplication returns one application visible to scope.
func (s *Store) GetApplication(ctx context.Context, scope hook.Scope, id string) (Application, error) {
	if err := Visible(ctx, s.pool, scope, id); err != nil {
		return Application{}, err
	}
	app, err := scanApp(s.pool.QueryRow(ctx, `SELECT `+appCols+` FROM applications a WHERE a.id = $1`, id))
	return oneRow(app, err, "get application", "application", id)
}

// UpdateApplication renames an application or (admins only) changes its
// plan. Raising the plan lifts the quota: call ReleaseHeld afterwards (the
// admin module does) to send messages held as quota_exceeded.
func (s *Store) UpdateApplication(ctx context.Context, scope hook.Scope, id string, u ApplicationUpdate) (Application, error) {
	if err := Visible(ctx, s.pool, scope, id); err != nil {
		return Application{}, err
	}
	if u.Name != nil {
		if err := validateAppName(*u.Name); err != nil {
			return Application{}, err
		}
		n := strings.TrimSpace(*u.Name)
		u.Name = &n
	}
	if u.PlanID != nil {
		if !scope.Admin {
			return Application{}, fmt.Errorf("change plan of application %s: %w", id, ErrPlanAdminOnly)
		}
		if *u.PlanID == "" {
			return Application{}, invalid("plan_id", "must not be empty")
		}
	}
	app, err := scanApp(s.pool.QueryRow(ctx, `UPDATE applications a SET
			name = COALESCE($2, a.name), plan_id = COALESCE($3, a.plan_id), updated_at = now()
		WHERE a.id = $1 RETURNING `+appCols, id, u.Name, u.PlanID))
	if isFK(err) {
		return Application{}, invalid("plan_id", fmt.Sprintf("plan %q does not exist", *u.PlanID))
	}
	if app, err = oneRow(app, err, "update application", "application", id); err != nil {
		return Application{}, err
	}
	if u.PlanID != nil {
		s.quota.forget(id)
	}
	return app, nil
}

// DeleteApplication deletes an application and everything it owns.
// API keys cannot delete their own application.
func (s *Store) DeleteApplication(ctx context.Context, scope hook.Scope, id string) error {
	if err := Visible(ctx, s.pool, scope, id); err != nil {
		return err
	}
	if !scope.Admin && scope.UserID == "" {
		return fmt.Errorf("delete application %s: %w", id, ErrKeyCannotManageApps)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM endpoints WHERE app_id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete application %s: %w", id, err)
		}
		eps, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("delete application %s: %w", id, err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM applications WHERE id = $1`, id)
		if err := oneChanged(tag, err, "delete application", "application", id); err != nil {
			return err
		}
		// The cascade deleted the endpoints: their waiting states go now,
		// their history later (msgstate.Forget).
		return msgstate.Forget(ctx, tx, id, eps)
	})
	if err != nil {
		return err
	}
	s.quota.forget(id)
	return nil
}
