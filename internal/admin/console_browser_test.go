package admin

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's headless-capable Chromium (package chromium,
// installed by .ci/run).
const chromiumPath = "/usr/bin/chromium"

// TestConsoleInChromiumLogsInCreatesAQueuePublishesAndGetsTheMessage
// drives the console in a real browser: the login form, htmx-boosted
// forms and redirects, and the get-messages page.
func TestConsoleInChromiumLogsInCreatesAQueuePublishesAndGetsTheMessage(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("skipping the console's browser test: %s is missing; install the Debian package chromium (apt-get install chromium)", chromiumPath)
	}
	a := newAPI(t, openBroker(t), Config{})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, testTimeout)
	defer cancel()

	// step runs browser actions and fails the test, naming the step, on
	// the first error.
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("Chromium: %s: %v", what, err)
		}
	}
	// textOnce waits until sel exists with text containing want (DOM
	// mutations re-evaluate it: htmx swaps the body after each form) and
	// returns that text.
	textOnce := func(sel, want string) string {
		t.Helper()
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && e.textContent.includes(%q) && e.textContent.trim(); })()`, sel, want)
		v, err := chromedp.Run(ctx, chromedp.Poll[string](js, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(testTimeout)))
		if err != nil {
			t.Fatalf("Chromium: waiting for %s to show %q: %v", sel, want, err)
		}
		return v
	}
	step("log in",
		chromedp.Navigate(a.srv.URL+"/"), // redirects to the login
		chromedp.WaitVisible(`input[name=user]`),
		chromedp.SendKeys(`input[name=user]`, "guest"),
		chromedp.SendKeys(`input[name=password]`, "guest"),
		chromedp.Click(`form.login button[type=submit]`),
		chromedp.WaitVisible(`#total-ready`))
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	step("create a queue",
		chromedp.Click(`nav a[href^="/console/queues"]`),
		chromedp.WaitVisible(`form[action="/console/queues/create"] input[name=name]`),
		chromedp.SendKeys(`form[action="/console/queues/create"] input[name=name]`, "browser-q"),
		chromedp.Click(`form[action="/console/queues/create"] button[type=submit]`),
		chromedp.WaitVisible(`form[action="/console/queues/publish"] textarea[name=body]`))
	step("publish",
		chromedp.SendKeys(`form[action="/console/queues/publish"] textarea[name=body]`, "hello from <chromium>"),
		chromedp.Click(`form[action="/console/queues/publish"] button[type=submit]`))
	flash, ready := textOnce(`p.flash`, "published"), textOnce(`#queue-ready`, "")
	step("get the message with ack",
		chromedp.SetValue(`form[action="/console/queues/get"] select[name=ack_mode]`, "ack"),
		chromedp.Click(`form[action="/console/queues/get"] button[type=submit]`))
	body := textOnce(`article.message pre.body`, "chromium")
	if title != "Overview · Ferry" {
		t.Errorf("page title after login %q, want the overview's", title)
	}
	if !strings.Contains(flash, "published") || ready != "1" {
		t.Errorf("after publishing: flash %q, ready %q; want a confirmation and 1 ready", flash, ready)
	}
	if body != "hello from <chromium>" {
		t.Errorf("the fetched message's body shows %q, want %q", body, "hello from <chromium>")
	}
	var q Queue
	a.must(http.StatusOK, "GET", "/api/queues/browser-q", nil).json(t, &q)
	if q.Stats == nil || q.Stats.Ready != 0 || q.Stats.Totals.Acked != 1 {
		t.Errorf("the queue after the browser's get with ack: %+v, want 0 ready and 1 acked", q.Stats)
	}
}
