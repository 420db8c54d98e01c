package tenant

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ethhook/ethhook/hook"
)

func strp(s string) *string { return &s }

func TestPasswordHashesNeverRunMoreThanTheCapAtOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, hook.Operator, NewUser{Email: "a@example.com", Password: "0123456789"}); err != nil {
		t.Fatal(err)
	}
	const limit, callers = 2, 12
	s.LimitPasswordHashing(limit)
	// Every hash blocks until released and counts how many run together.
	var mu sync.Mutex
	cur, peak := 0, 0
	release := make(chan struct{})
	s.hashes.run = func(f func()) {
		mu.Lock()
		cur++
		if cur > peak {
			peak = cur
		}
		mu.Unlock()
		<-release
		f()
		mu.Lock()
		cur--
		mu.Unlock()
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Authenticate(ctx, "a@example.com", "wrong-password")
			errs <- err
		}()
	}
	// Wait (by counters, not by time) until the slots are full and everyone
	// else queues, then let them all through.
	deadline := time.Now().Add(30 * time.Second)
	for s.hashes.hashing.Load() < limit || s.hashes.waiting.Load() < callers-limit {
		if time.Now().After(deadline) {
			t.Fatalf("never saturated: hashing %d waiting %d", s.hashes.hashing.Load(), s.hashes.waiting.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrBadCredentials) {
			t.Errorf("login: %v, want bad credentials", err)
		}
	}
	if peak != limit {
		t.Fatalf("%d hashes ran at once, cap %d", peak, limit)
	}
}

func TestPasswordHashWaitEndsWithTheContextOrAFullQueue(t *testing.T) {
	g := newHashGate(1, time.Hour)
	g.maxQueue = 1
	hold, held := make(chan struct{}), make(chan struct{})
	go func() { _ = g.do(context.Background(), func() { close(held); <-hold }) }()
	<-held
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.do(ctx, func() {}) }()
	for g.waiting.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	// The queue (one waiter) is full: the next caller is refused at once.
	if err := g.do(context.Background(), func() {}); !errors.Is(err, ErrBusy) {
		t.Fatalf("over the queue: %v, want ErrBusy", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(hold)
}

func TestBootstrapAdminMustChangeItsPassword(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u, pw, _, err := s.Bootstrap(ctx, "admin@ethhook.local")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Authenticate(ctx, "admin@ethhook.local", pw)
	if err != nil || !got.MustChangePassword {
		t.Fatalf("bootstrap admin %+v %v: want must_change_password", got, err)
	}
	self := hook.Scope{Admin: true, UserID: u.ID}
	if _, err := s.UpdateUser(ctx, self, u.ID, UserUpdate{Password: strp("a-new-password"), CurrentPassword: strp(pw)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UserByID(ctx, u.ID); got.MustChangePassword {
		t.Fatal("still must change after changing")
	}
	// Ordinary users never have to.
	o, _ := s.CreateUser(ctx, hook.Operator, NewUser{Email: "o@example.com", Password: "0123456789"})
	if o.MustChangePassword {
		t.Fatal("created user must change")
	}
}

func TestChangingOwnPasswordNeedsTheCurrentOneButAnAdminResetDoesNot(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	m, _ := s.CreateUser(ctx, hook.Operator, NewUser{Email: "m@example.com", Password: "0123456789"})
	self := hook.Scope{UserID: m.ID}
	var ve hook.FieldErrors
	for _, cur := range []*string{nil, strp(""), strp("not-the-password")} {
		_, err := s.UpdateUser(ctx, self, m.ID, UserUpdate{Password: strp("stolen-password")})
		if cur != nil {
			_, err = s.UpdateUser(ctx, self, m.ID, UserUpdate{Password: strp("stolen-password"), CurrentPassword: cur})
		}
		if !errors.As(err, &ve) || ve["current_password"] == "" {
			t.Fatalf("self change with current %v: %v, want a current_password error", cur, err)
		}
	}
	if _, err := s.Authenticate(ctx, "m@example.com", "0123456789"); err != nil {
		t.Fatalf("password changed without the current one: %v", err)
	}
	before, _ := s.UserByID(ctx, m.ID)
	if _, err := s.UpdateUser(ctx, self, m.ID, UserUpdate{Password: strp("new-password-1"), CurrentPassword: strp("0123456789")}); err != nil {
		t.Fatal(err)
	}
	after, _ := s.UserByID(ctx, m.ID)
	if after.CredentialVersion <= before.CredentialVersion {
		t.Fatalf("version %d -> %d: a password change must revoke tokens", before.CredentialVersion, after.CredentialVersion)
	}
	// An admin resets it without knowing it.
	if _, err := s.UpdateUser(ctx, hook.Scope{Admin: true, UserID: "usr_other"}, m.ID, UserUpdate{Password: strp("reset-password")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "m@example.com", "reset-password"); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	reset, _ := s.UserByID(ctx, m.ID)
	if reset.CredentialVersion <= after.CredentialVersion {
		t.Fatal("a reset must revoke tokens too")
	}
}

func TestCredentialVersionMovesOnRoleChangeAndLogoutOnly(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	app, _ := s.CreateApplication(ctx, hook.Operator, "A", "")
	m, _ := s.CreateUser(ctx, hook.Operator, NewUser{Email: "m@example.com", Password: "0123456789"})
	ver := func() int64 {
		u, err := s.UserByID(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		return u.CredentialVersion
	}
	v0 := ver()
	ids := []string{app.ID}
	if _, err := s.UpdateUser(ctx, hook.Operator, m.ID, UserUpdate{AppIDs: &ids, Role: strp(RoleMember)}); err != nil {
		t.Fatal(err)
	}
	if ver() != v0 {
		t.Fatal("same role and a membership change moved the version")
	}
	if _, err := s.UpdateUser(ctx, hook.Operator, m.ID, UserUpdate{Role: strp(RoleAdmin)}); err != nil {
		t.Fatal(err)
	}
	v1 := ver()
	if v1 <= v0 {
		t.Fatal("role change did not move the version")
	}
	if err := s.RevokeCredentials(ctx, m.ID); err != nil || ver() <= v1 {
		t.Fatalf("logout: %v", err)
	}
	if err := s.RevokeCredentials(ctx, "usr_nobody"); !errors.Is(err, hook.ErrNotFound) {
		t.Fatalf("logout of nobody: %v", err)
	}
}

func TestKeysDieWithTheirCreatorsAccessAndKeysCannotMakeKeys(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, _ := s.CreateApplication(ctx, hook.Operator, "A", "")
	b, _ := s.CreateApplication(ctx, hook.Operator, "B", "")
	m, _ := s.CreateUser(ctx, hook.Operator, NewUser{Email: "m@example.com", Password: "0123456789", AppIDs: []string{a.ID, b.ID}})
	other, _ := s.CreateUser(ctx, hook.Operator, NewUser{Email: "o@example.com", Password: "0123456789", AppIDs: []string{a.ID}})
	ms := hook.Scope{UserID: m.ID}
	ka, secretA, err := s.CreateAPIKey(ctx, ms, a.ID, "m on A")
	if err != nil {
		t.Fatal(err)
	}
	if ka.CreatedBy != m.ID {
		t.Fatalf("created_by %q, want %s", ka.CreatedBy, m.ID)
	}
	_, secretB, _ := s.CreateAPIKey(ctx, ms, b.ID, "m on B")
	_, secretO, _ := s.CreateAPIKey(ctx, hook.Scope{UserID: other.ID}, a.ID, "other on A")
	_, secretOp, _ := s.CreateAPIKey(ctx, hook.Operator, a.ID, "operator")

	// A key may neither create nor revoke keys, even of its own application.
	if _, _, err := s.CreateAPIKey(ctx, hook.Scope{AppID: a.ID}, a.ID, "minted"); !errors.Is(err, hook.ErrForbidden) {
		t.Fatalf("key created a key: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, hook.Scope{AppID: a.ID}, a.ID, ka.ID); !errors.Is(err, hook.ErrForbidden) {
		t.Fatalf("key revoked a key: %v", err)
	}

	active := func(secret string) bool {
		_, err := s.AuthenticateKey(ctx, secret)
		if err != nil && !errors.Is(err, ErrBadKey) {
			t.Fatal(err)
		}
		return err == nil
	}
	// m leaves A: m's key for A dies; m's key for B and the others' live.
	ids := []string{b.ID}
	if _, err := s.UpdateUser(ctx, hook.Operator, m.ID, UserUpdate{AppIDs: &ids}); err != nil {
		t.Fatal(err)
	}
	if active(secretA) || !active(secretB) || !active(secretO) || !active(secretOp) {
		t.Fatalf("after leaving A: A %v B %v other %v operator %v", active(secretA), active(secretB), active(secretO), active(secretOp))
	}
	// Deleting m revokes all of m's keys, and only m's.
	if err := s.DeleteUser(ctx, hook.Operator, m.ID); err != nil {
		t.Fatal(err)
	}
	if active(secretB) || !active(secretO) || !active(secretOp) {
		t.Fatalf("after deleting m: B %v other %v operator %v", active(secretB), active(secretO), active(secretOp))
	}
}

func TestAdminKeysDieWhenTheAdminRoleGoes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, _ := s.CreateApplication(ctx, hook.Operator, "A", "")
	b, _ := s.CreateApplication(ctx, hook.Operator, "B", "")
	adm, _ := s.CreateUser(ctx, hook.Operator, NewUser{Email: "adm@example.com", Password: "0123456789", Role: RoleAdmin, AppIDs: []string{b.ID}})
	if _, err := s.CreateUser(ctx, hook.Operator, NewUser{Email: "root@example.com", Password: "0123456789", Role: RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	as := hook.Scope{Admin: true, UserID: adm.ID}
	_, onA, _ := s.CreateAPIKey(ctx, as, a.ID, "")
	_, onB, _ := s.CreateAPIKey(ctx, as, b.ID, "")
	// Changing an admin's memberships leaves its keys alone (admins see all).
	none := []string{b.ID}
	if _, err := s.UpdateUser(ctx, hook.Operator, adm.ID, UserUpdate{AppIDs: &none}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateKey(ctx, onA); err != nil {
		t.Fatalf("admin's key died on a membership change: %v", err)
	}
	// Demoted to a member of B: the key for A (no longer visible) dies.
	if _, err := s.UpdateUser(ctx, hook.Operator, adm.ID, UserUpdate{Role: strp(RoleMember)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateKey(ctx, onA); !errors.Is(err, ErrBadKey) {
		t.Fatalf("key for A after demotion: %v", err)
	}
	if _, err := s.AuthenticateKey(ctx, onB); err != nil {
		t.Fatalf("key for B after demotion: %v", err)
	}
}
