//go:build browser

// Browser tests: a real headless Chromium (Debian's /usr/bin/chromium, or
// $CHROMIUM) driven by chromedp against the UI served on the admin
// module's router, with the whole pipeline in-process (devnet, ingest,
// process, deliver) sending real signed webhooks to a local receiver.
// Run: make test/browser (go test -tags browser -p 1 ./modules/admin/ui/...).
// Screenshots of every page (and of the page on any failure) go to
// artifacts/screenshots/ at the repository root ($ETHHOOK_ARTIFACTS
// overrides the artifacts directory).
package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is one headless Chromium with a fresh profile.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	step int
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath()); err != nil {
		t.Fatalf("chromium not found at %s (install Debian's chromium, or set CHROMIUM): %v", chromiumPath(), err)
	}
	opts := append([]chromedp.ExecAllocatorOption{},
		chromedp.ExecPath(chromiumPath()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 10*time.Minute)
	b := &browser{t: t, ctx: ctx, base: base}
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now, so a missing library fails here, clearly.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Registered after the browser, so it runs before the browser closes.
	t.Cleanup(func() {
		if t.Failed() {
			b.shot("FAILED")
		}
	})
	return b
}

// artifactsDir is artifacts/screenshots under the repository root.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("ETHHOOK_ARTIFACTS"); d != "" {
		return filepath.Join(d, "screenshots")
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "artifacts", "screenshots")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "artifacts", "screenshots")
		}
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// shot saves a full-page screenshot named after the test and the step.
func (b *browser) shot(name string) {
	b.t.Helper()
	b.step++
	dir := artifactsDir(b.t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("screenshot dir: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(dir, unsafeName.ReplaceAllString(fmt.Sprintf("%s-%02d-%s", b.t.Name(), b.step, name), "_")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Logf("write screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot %s", file)
}

// do runs steps, failing the test with what was being done.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		b.t.Fatalf("%s: %v\npage:\n%s", what, err, body)
	}
}

// stepTimeout bounds one browser step (generous: the machine is shared).
const stepTimeout = 45 * time.Second

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// text is the visible text of the first element matching a CSS selector.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

func evalJS[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// eventually polls js (a boolean expression) until it holds.
func (b *browser) eventually(what, js string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
			b.t.Fatalf("%s: not true within %s: %s\npage text:\n%s", what, within, js, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (b *browser) login(email, password string) {
	b.t.Helper()
	b.open("/login")
	b.shot("login")
	b.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("form.logout")),
	)
}

func (b *browser) logout() {
	b.t.Helper()
	b.do("sign out", chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitVisible(chromedp.CSS("#password")))
}

// phone re-renders the current page at a phone's width, screenshots it and
// checks nothing is wider than the screen.
func (b *browser) phone(name string) {
	b.t.Helper()
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile))
	b.shot(name + "-phone")
	overflow := evalJS[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`)
	b.do("laptop width", chromedp.EmulateViewport(1280, 900))
	if overflow {
		b.t.Errorf("%s: the page is wider than a 390px phone screen", name)
	}
}

func has(s, sub string) bool { return strings.Contains(s, sub) }
