package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// screenshotEnv, if set, names a file that receives the repository page's
// screenshot too (for looking at it after the test).
const screenshotEnv = "MEGAENGINE_WEB_SCREENSHOT"

// chromium finds Debian's Chromium; the test is skipped without it.
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skip("no Chromium found (/usr/bin/chromium): install it with apt-get install -y chromium to run the browser test")
	return ""
}

// A real browser loads the repository page with its stylesheet (under the
// Content-Security-Policy), follows a link to a file and sees it with line
// numbers; both pages are saved as screenshots in the test's directory.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	s := startSite(t)
	dir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1200, 900),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil {
		t.Skipf("Chromium at %s does not start: %v", bin, err)
	}

	fileLink := chromedp.CSS(`a[href="/repos/` + s.repo + `/blob/main/README.md"]`)
	if err := chromedp.Do(bctx,
		chromedp.Navigate(s.base+"/repos/"+s.repo),
		chromedp.WaitVisible(chromedp.CSS(`article.readme h1`)),
	); err != nil {
		t.Fatal(err)
	}
	heading := run(t, bctx, chromedp.Text(chromedp.CSS(`article.readme h1`)))
	border := run(t, bctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("header")).borderBottomStyle`))
	repoShot := run(t, bctx, chromedp.FullScreenshot(100))
	if err := chromedp.Do(bctx, chromedp.Click(fileLink), chromedp.WaitVisible(chromedp.CSS(`table.code`))); err != nil {
		t.Fatal(err)
	}
	location := run(t, bctx, chromedp.Location())
	line3 := run(t, bctx, chromedp.Text(chromedp.CSS(`#L3 td.src`)))
	fileShot := run(t, bctx, chromedp.FullScreenshot(100))
	// Back on the repository page, on to its issues and into the issue.
	issuesLink := chromedp.CSS(`a[href="/repos/` + s.repo + `/issues"]`)
	issueLink := chromedp.CSS(`a[href="/repos/` + s.repo + `/issues/` + s.issue + `"]`)
	if err := chromedp.Do(bctx, chromedp.Navigate(s.base+"/repos/"+s.repo), chromedp.WaitVisible(issuesLink),
		chromedp.Click(issuesLink), chromedp.WaitVisible(issueLink),
		chromedp.Click(issueLink), chromedp.WaitVisible(chromedp.CSS(`section.comment`))); err != nil {
		t.Fatal(err)
	}
	issueAt := run(t, bctx, chromedp.Location())
	comment := run(t, bctx, chromedp.Text(chromedp.CSS(`section.comment article.readme`)))
	issueShot := run(t, bctx, chromedp.FullScreenshot(100))
	if !strings.HasSuffix(issueAt, "/issues/"+s.issue) || !strings.Contains(comment, "a reply") {
		t.Errorf("after following the issue links the browser is at %s showing the comment %q", issueAt, comment)
	}
	if heading != "Hello web" {
		t.Errorf("README heading %q, want the rendered %q", heading, "Hello web")
	}
	if border != "solid" {
		t.Errorf("header border %q: the stylesheet did not apply", border)
	}
	if !strings.HasSuffix(location, "/blob/main/README.md") {
		t.Errorf("after the click the browser is at %s, not the file", location)
	}
	if line3 != "Some **bold** text." {
		t.Errorf("line 3 of README.md shows %q", line3)
	}
	for name, png := range map[string][]byte{"repo.png": repoShot, "file.png": fileShot, "issue.png": issueShot} {
		if len(png) < 1000 || string(png[1:4]) != "PNG" {
			t.Fatalf("screenshot %s: %d bytes, not a PNG image", name, len(png))
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out := os.Getenv(screenshotEnv); out != "" {
		if err := os.WriteFile(out, repoShot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs one browser action and returns its value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
