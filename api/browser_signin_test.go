//go:build !nobrowser

package api

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSignInInBrowser: a real browser opens the list, is sent to sign in with GitLab (the
// double) and back, sees only the pipelines of the project its user can read, opens the failed
// pipeline and retries it with the page's button: the failed job is pending again. The buttons
// need clicks, which chromium's command line cannot give, so this test drives it over the
// DevTools protocol (chromedp).
func TestSignInInBrowser(t *testing.T) {
	bin := chromium(t)
	env := newSigninEnv(t)
	env.gl.SignInAs("dev")
	env.m.appendLog(4, "test/unit", 2, pytestLog) // for the screenshot

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.WindowSize(1000, 800))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	if err := chromedp.Do(bctx, chromedp.Navigate(env.srv.URL+"/pipelines"), chromedp.WaitVisible(chromedp.CSS("form.account"))); err != nil {
		t.Fatal(err)
	}
	where := run(t, bctx, chromedp.Location())
	list := run(t, bctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if where != env.srv.URL+"/pipelines" || !strings.Contains(list, "signed in as <b>dev</b>") {
		t.Fatalf("after signing in the browser is at %s:\n%s", where, list)
	}
	if !strings.Contains(list, `href="/pipelines/4"`) || strings.Contains(list, `href="/pipelines/5"`) || strings.Contains(list, `href="/pipelines/6"`) {
		t.Errorf("dev's list shows other projects' pipelines, or not g/app's:\n%s", list)
	}

	if err := chromedp.Do(bctx, chromedp.Navigate(env.srv.URL+"/pipelines/4"), chromedp.WaitVisible(chromedp.CSS("button.retry"))); err != nil {
		t.Fatal(err)
	}
	shot := run(t, bctx, chromedp.CaptureScreenshot())
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("button.retry")),
		chromedp.WaitVisible(chromedp.CSS(`details[data-job="test/unit"][data-state="pending"]`))); err != nil {
		t.Fatal(err)
	}
	page := run(t, bctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if !bytes.HasPrefix(shot, []byte("\x89PNG")) {
		t.Fatal("the screenshot is no PNG")
	}
	name := filepath.Join(artifacts(t), "signed-in-pipeline-page.png")
	if err := os.WriteFile(name, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the signed-in pipeline page: %s", name)
	if calls := env.engineCalls(); len(calls) != 1 || calls[0] != "retry 4" {
		t.Errorf("the button asked the engine %v, want one retry of pipeline 4", calls)
	}
	if !strings.Contains(page, `data-job="test/unit" data-state="pending" data-attempt="3"`) {
		t.Errorf("after the retry the page does not show test/unit pending in attempt 3:\n%s", page)
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
