package hook

import (
	"errors"
	"fmt"
	"testing"
)

func TestNotFoundNamesWhatWasNotFoundAndIsErrNotFound(t *testing.T) {
	err := fmt.Errorf("replay: %w", NotFound("endpoint", "ep_x"))
	if !errors.Is(err, ErrNotFound) || err.Error() != "replay: endpoint ep_x not found" {
		t.Fatalf("%v: want errors.Is ErrNotFound and the endpoint named", err)
	}
}

func TestConflictAndForbiddenKeepTheirMessageAndMatchTheirSentinel(t *testing.T) {
	c, f := Conflict("message m is delivering"), Forbidden("admins only")
	if !errors.Is(c, ErrConflict) || errors.Is(c, ErrForbidden) || c.Error() != "message m is delivering" {
		t.Fatalf("conflict %v", c)
	}
	if !errors.Is(fmt.Errorf("x: %w", f), ErrForbidden) || errors.Is(f, ErrConflict) || f.Error() != "admins only" {
		t.Fatalf("forbidden %v", f)
	}
}

func TestFieldErrorsListFieldsInOrderAndAreFoundWithErrorsAs(t *testing.T) {
	err := fmt.Errorf("create: %w", FieldErrors{"url": "is required", "addresses[1]": "not an address"})
	var fe FieldErrors
	if !errors.As(err, &fe) || fe["url"] != "is required" {
		t.Fatalf("%v: want FieldErrors with url", err)
	}
	if got, want := fe.Error(), "invalid input: addresses[1]: not an address; url: is required"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}
