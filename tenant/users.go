package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/hook"
)

// User roles.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// ErrBadCredentials is returned by Authenticate for an unknown email or a
// wrong password alike.
var ErrBadCredentials = errors.New("invalid email or password")

// User is a person who logs in. The password hash never leaves the package.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	AppIDs    []string  `json:"app_ids"` // applications a member belongs to
	CreatedAt time.Time `json:"created_at"`
	// MustChangePassword: the user may do nothing but change their own
	// password (the first-run bootstrap admin, until it has).
	MustChangePassword bool `json:"must_change_password"`
	// CredentialVersion is embedded in every login token and UI session of
	// the user; a password change or reset, a role change or a logout
	// moves it on and so revokes them all.
	CredentialVersion int64 `json:"-"`
}

// NewUser is what CreateUser needs.
type NewUser struct {
	Email    string
	Password string
	Role     string   // RoleAdmin or RoleMember (empty = member)
	AppIDs   []string // applications to make a member of
}

// UserFilter narrows ListUsers.
type UserFilter struct {
	Email string // case-insensitive substring
	Role  string
	AppID string // members of this application
}

// UserUpdate changes a user; nil leaves a field alone.
type UserUpdate struct {
	Role     *string
	Password *string
	// CurrentPassword must accompany a change of one's own password (an
	// admin resetting another user's password needs none).
	CurrentPassword *string
	AppIDs          *[]string // replaces the memberships
}

func validEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", invalid("email", "is required")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 || !strings.Contains(email, "@") {
		return "", invalid("email", "is not a valid email address")
	}
	return email, nil
}

func validPassword(pw string) error {
	if len(pw) < MinPasswordLen {
		return invalid("password", fmt.Sprintf("must be at least %d characters", MinPasswordLen))
	}
	if len(pw) > 1024 {
		return invalid("password", "must be at most 1024 bytes")
	}
	return nil
}

func validRole(role string) (string, error) {
	switch role {
	case "":
		return RoleMember, nil
	case RoleAdmin, RoleMember:
		return role, nil
	}
	return "", invalid("role", `must be "admin" or "member"`)
}

func requireAdmin(scope hook.Scope, what string) error {
	if !scope.Admin {
		return fmt.Errorf("%s: %w", what, ErrAdminRequired)
	}
	return nil
}

// CreateUser adds a user (admins only). The email is unique, case-insensitively.
func (s *Store) CreateUser(ctx context.Context, scope hook.Scope, nu NewUser) (User, error) {
	if err := requireAdmin(scope, "create user"); err != nil {
		return User{}, err
	}
	email, err := validEmail(nu.Email)
	if err != nil {
		return User{}, err
	}
	if err := validPassword(nu.Password); err != nil {
		return User{}, err
	}
	role, err := validRole(nu.Role)
	if err != nil {
		return User{}, err
	}
	u := User{ID: NewID("usr"), Email: email, Role: role, AppIDs: []string{}, CredentialVersion: 1}
	hash, err := s.hashPassword(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4) RETURNING created_at`,
			u.ID, email, hash, role).Scan(&u.CreatedAt); err != nil {
			return err
		}
		return setMembers(ctx, tx, u.ID, nu.AppIDs)
	})
	if isUnique(err) {
		return User{}, fmt.Errorf("a user with email %q already exists: %w", email, hook.ErrConflict)
	}
	if err != nil {
		var ve hook.FieldErrors
		if errors.As(err, &ve) {
			return User{}, err
		}
		return User{}, fmt.Errorf("create user: %w", err)
	}
	u.AppIDs = dedupe(nu.AppIDs)
	return u, nil
}

func dedupe(ids []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// setMembers replaces a user's memberships with appIDs.
func setMembers(ctx context.Context, tx pgx.Tx, userID string, appIDs []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM application_members WHERE user_id = $1`, userID); err != nil {
		return err
	}
	for _, id := range dedupe(appIDs) {
		_, err := tx.Exec(ctx, `INSERT INTO application_members (app_id, user_id) VALUES ($1, $2)`, id, userID)
		if isFK(err) {
			return invalid("app_ids", fmt.Sprintf("application %q does not exist", id))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// CountUsers returns how many users exist (for the first-run bootstrap).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// Bootstrap creates an admin with a random password when there are no
// users at all, and returns it with the password; created is false (and
// nothing changes) when a user already exists. Concurrent callers in several
// processes create at most one admin. The admin must change the password
// before doing anything else (its MustChangePassword is set): the random one
// was printed to a log.
func (s *Store) Bootstrap(ctx context.Context, email string) (u User, password string, created bool, err error) {
	password = randomToken(18)
	u = User{ID: NewID("usr"), Email: email, Role: RoleAdmin, AppIDs: []string{}, MustChangePassword: true, CredentialVersion: 1}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return User{}, "", false, fmt.Errorf("bootstrap admin: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(727274006)`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO users (id, email, password_hash, role, must_change_password)
			SELECT $1, $2, $3, 'admin', true WHERE NOT EXISTS (SELECT 1 FROM users)`, u.ID, email, hash)
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		return nil
	})
	if err != nil {
		return User{}, "", false, fmt.Errorf("bootstrap admin: %w", err)
	}
	if !created {
		return User{}, "", false, nil
	}
	u.CreatedAt = time.Now()
	return u, password, true, nil
}

const userCols = `u.id, u.email, u.role, u.created_at,
	COALESCE((SELECT array_agg(m.app_id ORDER BY m.app_id) FROM application_members m WHERE m.user_id = u.id), '{}'),
	u.must_change_password, u.credential_version`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Role, &u.CreatedAt, &u.AppIDs, &u.MustChangePassword, &u.CredentialVersion)
	return u, err
}

// Authenticate checks an email and password and returns the user, or
// ErrBadCredentials.
func (s *Store) Authenticate(ctx context.Context, email, password string) (User, error) {
	var hash string
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id, password_hash FROM users WHERE lower(email) = lower($1)`, strings.TrimSpace(email)).Scan(&id, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.checkPassword(ctx, dummyHash(), password); err != nil {
			return User{}, err
		}
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("authenticate: %w", err)
	}
	ok, err := s.checkPassword(ctx, hash, password)
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, ErrBadCredentials
	}
	return s.UserByID(ctx, id)
}

// UserIDByEmail returns the id of the user with this email (any case), or
// hook.ErrNotFound; for recording whose account a failed sign-in named.
func (s *Store) UserIDByEmail(ctx context.Context, email string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT id FROM users WHERE lower(email) = lower($1)`, strings.TrimSpace(email)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", hook.NotFound("user with email", strings.TrimSpace(email))
	}
	if err != nil {
		return "", fmt.Errorf("find user by email: %w", err)
	}
	return id, nil
}

// RevokeCredentials ends every login token and UI session of user id
// (logout): its credential version moves on.
func (s *Store) RevokeCredentials(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET credential_version = credential_version + 1 WHERE id = $1`, id)
	return oneChanged(tag, err, "revoke credentials of", "user", id)
}

// UserByID returns a user without a scope check (for token validation).
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users u WHERE u.id = $1`, id))
	return oneRow(u, err, "get user", "user", id)
}

// GetUser returns a user: admins see everyone, a member only themself.
func (s *Store) GetUser(ctx context.Context, scope hook.Scope, id string) (User, error) {
	if !scope.Admin && (scope.UserID == "" || scope.UserID != id) {
		return User{}, hook.NotFound("user", id)
	}
	return s.UserByID(ctx, id)
}

// ListUsers lists users (admins only) in creation order.
func (s *Store) ListUsers(ctx context.Context, scope hook.Scope, f UserFilter, cursor string, limit int) ([]User, string, error) {
	if err := requireAdmin(scope, "list users"); err != nil {
		return nil, "", err
	}
	l, err := newList(cursor, limit)
	if err != nil {
		return nil, "", err
	}
	if f.Role != "" {
		if _, err := validRole(f.Role); err != nil {
			return nil, "", err
		}
	}
	l.afterID("u.id")
	l.contains("u.email", f.Email)
	l.equals("u.role", f.Role)
	if f.AppID != "" {
		l.where("EXISTS (SELECT 1 FROM application_members m WHERE m.user_id = u.id AND m.app_id = " + l.arg(f.AppID) + ")")
	}
	q := `SELECT ` + userCols + ` FROM users u WHERE ` + l.sql() + ` ORDER BY u.id LIMIT ` + l.limitArg()
	return queryPage(ctx, s.pool, "list users", q, l.args, l.limit, scanUser, func(u User) string { return u.ID })
}

// UpdateUser changes a user's role, password or memberships. Admins may
// change anyone; a member may only change their own password. Changing
// one's own password needs the current one (up.CurrentPassword) and clears
// MustChangePassword. A new password or a new role revokes the user's login
// tokens and sessions; API keys the user created for applications they can
// no longer see (a membership removed, admin role taken away) are revoked.
func (s *Store) UpdateUser(ctx context.Context, scope hook.Scope, id string, up UserUpdate) (User, error) {
	if _, err := s.GetUser(ctx, scope, id); err != nil {
		return User{}, err
	}
	self := scope.UserID != "" && scope.UserID == id
	if self && up.Password != nil {
		if err := s.checkCurrentPassword(ctx, id, up.CurrentPassword); err != nil {
			return User{}, err
		}
	}
	if !scope.Admin && (up.Role != nil || up.AppIDs != nil) {
		return User{}, fmt.Errorf("update user %s: %w", id, hook.ErrForbidden)
	}
	var role *string
	if up.Role != nil {
		r, err := validRole(*up.Role)
		if err != nil {
			return User{}, err
		}
		role = &r
	}
	var hash *string
	if up.Password != nil {
		if err := validPassword(*up.Password); err != nil {
			return User{}, err
		}
		h, err := s.hashPassword(ctx, *up.Password)
		if err != nil {
			return User{}, err
		}
		hash = &h
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if role != nil && *role != RoleAdmin {
			if err := keepOneAdmin(ctx, tx, id); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET role = COALESCE($2, role), password_hash = COALESCE($3, password_hash),
			must_change_password = must_change_password AND NOT ($3::text IS NOT NULL AND $4),
			credential_version = credential_version + CASE WHEN $3::text IS NOT NULL OR $2::text <> role THEN 1 ELSE 0 END
			WHERE id = $1`, id, role, hash, self); err != nil {
			return err
		}
		if up.AppIDs != nil {
			if err := setMembers(ctx, tx, id, *up.AppIDs); err != nil {
				return err
			}
		}
		if up.AppIDs != nil || role != nil {
			return revokeUnreachableKeys(ctx, tx, id)
		}
		return nil
	})
	if err != nil {
		var ve hook.FieldErrors
		if errors.As(err, &ve) || errors.Is(err, hook.ErrConflict) {
			return User{}, err
		}
		return User{}, fmt.Errorf("update user %s: %w", id, err)
	}
	return s.UserByID(ctx, id)
}

// checkCurrentPassword fails with hook.FieldErrors on current_password
// unless it is user id's password.
func (s *Store) checkCurrentPassword(ctx context.Context, id string, current *string) error {
	if current == nil || *current == "" {
		return invalid("current_password", "is required to change your own password")
	}
	var hash string
	if err := s.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, id).Scan(&hash); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return hook.NotFound("user", id)
		}
		return fmt.Errorf("check password of %s: %w", id, err)
	}
	ok, err := s.checkPassword(ctx, hash, *current)
	if err != nil {
		return err
	}
	if !ok {
		return invalid("current_password", "is not your current password")
	}
	return nil
}

// revokeUnreachableKeys revokes the active API keys user id created for
// applications the user can no longer see: not an admin and not a member.
func revokeUnreachableKeys(ctx context.Context, tx pgx.Tx, id string) error {
	_, err := tx.Exec(ctx, `UPDATE api_keys k SET revoked_at = now()
		WHERE k.created_by = $1 AND k.revoked_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = $1 AND u.role = 'admin')
		AND NOT EXISTS (SELECT 1 FROM application_members m WHERE m.app_id = k.app_id AND m.user_id = $1)`, id)
	return err
}

// keepOneAdmin fails with hook.ErrConflict when user id is the last admin.
func keepOneAdmin(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(727274006)`); err != nil {
		return err
	}
	var others int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin' AND id <> $1`, id).Scan(&others); err != nil {
		return err
	}
	var isAdmin bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin')`, id).Scan(&isAdmin); err != nil {
		return err
	}
	if isAdmin && others == 0 {
		return fmt.Errorf("the last admin cannot be removed or demoted: %w", hook.ErrConflict)
	}
	return nil
}

// DeleteUser removes a user (admins only; never the last admin) and
// revokes every API key the user created; their tokens and sessions stop
// working with the user row.
func (s *Store) DeleteUser(ctx context.Context, scope hook.Scope, id string) error {
	if err := requireAdmin(scope, "delete user"); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := keepOneAdmin(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = now() WHERE created_by = $1 AND revoked_at IS NULL`, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return hook.NotFound("user", id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, hook.ErrNotFound) && !errors.Is(err, hook.ErrConflict) {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return err
}
