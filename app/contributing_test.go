package app

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ethhook/ethhook/internal/testenv"
)

// mapTable returns the first column (between backquotes) of the rows of the
// markdown table under the heading that starts with heading.
func mapTable(t *testing.T, doc, heading string) []string {
	t.Helper()
	i := strings.Index(doc, "\n## "+heading)
	if i < 0 {
		t.Fatalf("CONTRIBUTING.md has no section %q", heading)
	}
	sec := doc[i+1:]
	if j := strings.Index(sec[3:], "\n## "); j >= 0 {
		sec = sec[:j+3]
	}
	cell := regexp.MustCompile("(?m)^\\| `([^`]+)` \\|")
	var out []string
	for _, m := range cell.FindAllStringSubmatch(sec, -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatalf("section %q lists nothing", heading)
	}
	return out
}

func readContributing(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../CONTRIBUTING.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestContributorMapNamesEveryTableAfterMigrations: every table the map
// names exists once the migrations ran, and every table the migrations
// leave (partitions aside) is in the map.
func TestContributorMapNamesEveryTableAfterMigrations(t *testing.T) {
	named := mapTable(t, readContributing(t), "Postgres")
	pool := testenv.PG(t)
	rows, err := pool.Query(context.Background(), `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range named {
		if !slices.Contains(have, n) {
			t.Errorf("CONTRIBUTING.md names table %s, which the migrations do not create", n)
		}
	}
	for _, n := range have {
		if !slices.Contains(named, n) {
			t.Errorf("table %s exists after the migrations but CONTRIBUTING.md does not say who writes it", n)
		}
	}
}

// keyFragment is what the code must contain for a key pattern of the map:
// a per-chain key `{<chain>}:name...` is built with Keys.Chain(id, "name"
// (or "name:"), any other key from a string literal that starts with the
// pattern's fixed part (up to its first placeholder).
func keyFragment(pattern string) *regexp.Regexp {
	if rest, ok := strings.CutPrefix(pattern, "{<chain>}:"); ok {
		name, _, _ := strings.Cut(rest, ":")
		return regexp.MustCompile(`Chain\([^()]*, "` + regexp.QuoteMeta(name) + `:?"`)
	}
	fixed, _, _ := strings.Cut(pattern, "<")
	return regexp.MustCompile(`"` + regexp.QuoteMeta(fixed))
}

// TestContributorMapKeysAreBuiltInCode: every Redis key pattern the map
// names is built somewhere in the (non-test) Go source.
func TestContributorMapKeysAreBuiltInCode(t *testing.T) {
	patterns := mapTable(t, readContributing(t), "Redis")
	var src strings.Builder
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != "..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		src.Write(b)
		src.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code := src.String()
	for _, p := range patterns {
		if re := keyFragment(p); !re.MatchString(code) {
			t.Errorf("CONTRIBUTING.md names Redis key %s, but no code builds it (looked for %s)", p, re)
		}
	}
	// The check itself must be able to fail.
	if keyFragment("{<chain>}:nosuchkey").MatchString(code) || keyFragment("nosuch:key:<x>").MatchString(code) {
		t.Fatal("the key check matches keys no code builds")
	}
}
