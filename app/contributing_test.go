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

// goSource is every non-test Go file of the repository, concatenated.
func goSource(t *testing.T) string {
	t.Helper()
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
	return src.String()
}

// TestContributorMapKeysAreBuiltInCode: every Redis key pattern the map
// names is built somewhere in the (non-test) Go source.
func TestContributorMapKeysAreBuiltInCode(t *testing.T) {
	patterns := mapTable(t, readContributing(t), "Redis")
	code := goSource(t)
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

// Where the code builds Redis keys (all under the configured prefix):
// hook.Keys.Chain(id, "name") for a per-chain key, and for any other key a
// string literal or a string constant right after the prefix
// (`k.Prefix + "{deliver}:retries"`, `k.Prefix + DeliverJobsName`) or given
// to hook.Keys.Key (`keys.Key("login:" + ...)`, `keys.Key(sessionKeyPrefix + ...)`).
var (
	chainKeyRe     = regexp.MustCompile(`Chain\([^()]*, "([^"]+)"`)
	prefixLitRe    = regexp.MustCompile(`\b(?:[A-Za-z_]\w*\.)+[pP]refix\s*\+\s*"([^"]+)"`)
	prefixConstRe  = regexp.MustCompile(`\b(?:[A-Za-z_]\w*\.)+[pP]refix\s*\+\s*([A-Za-z_]\w*)\b`)
	keyCallLitRe   = regexp.MustCompile(`\bkeys?\.Key\("([^"]+)"`)
	keyCallConstRe = regexp.MustCompile(`\bkeys?\.Key\(([A-Za-z_]\w*)\b`)
)

// keysBuilt returns the start of every Redis key the code builds, each as
// a map pattern's beginning: "{<chain>}:name" for a per-chain key, else the
// literal the key starts with ("deliver:rate:{", "{deliver}:jobs").
func keysBuilt(code string) []string {
	constant := func(name string) (string, bool) {
		// A declaration: `const Name = "..."` or a line of a const block.
		m := regexp.MustCompile(`(?m)^\s*(?:const\s+)?` + regexp.QuoteMeta(name) + `(?:\s+string)?\s*=\s*"([^"]+)"`).FindStringSubmatch(code)
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	var out []string
	add := func(k string) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, m := range chainKeyRe.FindAllStringSubmatch(code, -1) {
		add("{<chain>}:" + strings.TrimSuffix(m[1], ":"))
	}
	for _, re := range []*regexp.Regexp{prefixLitRe, keyCallLitRe} {
		for _, m := range re.FindAllStringSubmatch(code, -1) {
			add(m[1])
		}
	}
	for _, re := range []*regexp.Regexp{prefixConstRe, keyCallConstRe} {
		for _, m := range re.FindAllStringSubmatch(code, -1) {
			if v, ok := constant(m[1]); ok {
				add(v)
			}
		}
	}
	return out
}

// unmapped returns the built keys no map pattern starts with (a per-chain
// key matches its pattern's first segment: "{<chain>}:blk" is
// "{<chain>}:blk:<hash>").
func unmapped(built, patterns []string) []string {
	var out []string
	for _, k := range built {
		if !slices.ContainsFunc(patterns, func(p string) bool {
			if rest, ok := strings.CutPrefix(k, "{<chain>}:"); ok {
				pr, isChain := strings.CutPrefix(p, "{<chain>}:")
				name, _, _ := strings.Cut(pr, ":")
				return isChain && name == rest
			}
			return strings.HasPrefix(p, k)
		}) {
			out = append(out, k)
		}
	}
	return out
}

// TestEveryRedisKeyTheCodeBuildsIsInTheContributorMap: the other way
// round, every Redis key the (non-test) code builds is named in the map,
// so a new key cannot land without saying who writes it.
func TestEveryRedisKeyTheCodeBuildsIsInTheContributorMap(t *testing.T) {
	patterns := mapTable(t, readContributing(t), "Redis")
	built := keysBuilt(goSource(t))
	// Today's code builds over twenty keys; far fewer means the patterns
	// above stopped finding them.
	if len(built) < 20 {
		t.Fatalf("found only %d Redis keys built in code (%v): the key finder is broken", len(built), built)
	}
	for _, k := range unmapped(built, patterns) {
		t.Errorf("the code builds Redis key %s..., which CONTRIBUTING.md's Redis map does not name: add a row (writer, readers, what)", k)
	}
	// The check must be able to fail: without any one row of the map,
	// some key the code builds is reported.
	for i, p := range patterns {
		less := slices.Delete(slices.Clone(patterns), i, i+1)
		if len(unmapped(built, less)) == 0 {
			t.Errorf("removing %s from the map is not noticed: no key the code builds needs it", p)
		}
	}
}
