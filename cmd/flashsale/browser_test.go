package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the test reads the browser's zone, whatever the machine has

	"github.com/chromedp/chromedp"

	"github.com/flashsale/flashsale/internal/testenv"
)

const (
	chromiumPath = "/usr/bin/chromium"
	// browserZone is the browser's time zone: an offset with half hours and no
	// daylight saving, so a wrong local-to-UTC conversion cannot pass by luck.
	browserZone = "Asia/Kolkata"
)

// TestBrowserSale drives the web page in headless Chromium against a real
// server: the admin creates products and sales, customers sign up and buy.
func TestBrowserSale(t *testing.T) {
	needChromium(t)
	zone, err := time.LoadLocation(browserZone)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t)
	b := newBrowser(t, s.baseURL)

	// The admin signs in and creates a product with one item and a sale open now.
	b.open("#/signin")
	b.waitVisible("#signin-email")
	b.do("sign in as admin",
		chromedp.SendKeys(chromedp.ID("signin-email"), testAdminEmail),
		chromedp.SendKeys(chromedp.ID("signin-password"), testAdminPassword),
		chromedp.Click(chromedp.ID("signin-submit")))
	b.waitVisible("#product-form")
	watch := b.createProduct("Watch", "250", "1")
	now := time.Now()
	start, end := now.Add(-2*time.Minute).Truncate(time.Second), now.Add(time.Hour).Truncate(time.Second)
	b.createSale(start.In(zone), end.In(zone))
	b.waitJS("the active sale window shown in UTC and local time",
		fmt.Sprintf(`document.querySelector('#sale-result [data-testid=starts-utc]')?.textContent.includes(%s) &&
			document.querySelector('#sale-result [data-testid=ends-utc]')?.textContent.includes(%s) &&
			document.querySelector('#sale-result [data-testid=sale-state]')?.dataset.state === 'SALE_STATE_ACTIVE'`,
			jsString(start.UTC().Format("2006-01-02 15:04:05 UTC")), jsString(end.UTC().Format("2006-01-02 15:04:05 UTC"))))
	if got := b.text(`#sale-result [data-testid=starts-local]`); got == "" {
		t.Errorf("sale start in local time is empty")
	}

	// A second product whose sale starts in an hour.
	ring := b.createProduct("Ring", "9.50", "5")
	b.createSale(now.Add(time.Hour).In(zone), now.Add(2*time.Hour).In(zone))
	b.waitJS("the upcoming sale created", `document.querySelector('#sale-result [data-testid=sale-state]')?.dataset.state === 'SALE_STATE_UPCOMING'`)

	// A customer signs up, sees both sales with their countdowns, and buys the watch.
	b.do("sign out", chromedp.Click(chromedp.ID("signout")))
	b.signUp("carol@example.com", "carol-password")
	b.waitJS("the live sale on the list", fmt.Sprintf(
		`document.querySelector('#live-sales [data-product-id=%s] [data-testid=countdown]')?.textContent.startsWith('Ends in')`, jsString(watch)))
	b.waitJS("the upcoming sale's countdown on the list", fmt.Sprintf(
		`/Starts in (59m|1h)/.test(document.querySelector('#upcoming-sales [data-product-id=%s] [data-testid=countdown]')?.textContent)`, jsString(ring)))

	b.open("#/product/" + watch)
	b.waitJS("remaining stock", `document.querySelector('#remaining')?.textContent === '1 left'`)
	b.do("buy", chromedp.Click(chromedp.ID("buy")))
	b.waitOutcome("confirmed", "Confirmed")
	b.do("buy again", chromedp.Click(chromedp.ID("buy")))
	b.waitOutcome("already-ordered", "Already ordered")
	b.waitJS("remaining stock updated", `document.querySelector('#remaining')?.textContent === '0 left'`)

	b.open("#/orders")
	b.waitJS("the order in my orders", `document.querySelectorAll('[data-testid=order-row][data-status=ORDER_STATUS_CONFIRMED]').length === 1 &&
		document.querySelector('[data-testid=order-row] a')?.textContent === 'Watch'`)

	// A second customer finds the watch sold out and the ring not open yet.
	b.do("sign out", chromedp.Click(chromedp.ID("signout")))
	b.signUp("dave@example.com", "dave-password")
	b.open("#/product/" + watch)
	b.waitJS("sold-out state", `document.querySelector('[data-testid=sale-state]')?.dataset.state === 'SALE_STATE_SOLD_OUT'`)
	b.do("buy sold out", chromedp.Click(chromedp.ID("buy")))
	b.waitOutcome("sold-out", "Sold out")

	b.open("#/product/" + ring)
	b.waitJS("the upcoming sale's countdown", `/^Starts in (59m|1h)/.test(document.querySelector('#countdown')?.textContent)`)
	b.do("buy too early", chromedp.Click(chromedp.ID("buy")))
	b.waitOutcome("not-active", "Not open")

	// Sign-in errors read as words.
	b.do("sign out", chromedp.Click(chromedp.ID("signout")))
	b.open("#/signin")
	b.waitVisible("#signin-email")
	b.do("wrong password",
		chromedp.SendKeys(chromedp.ID("signin-email"), "dave@example.com"),
		chromedp.SendKeys(chromedp.ID("signin-password"), "not-the-password"),
		chromedp.Click(chromedp.ID("signin-submit")))
	b.waitJS("a readable sign-in error", `document.querySelector('#signin-error:not([hidden])')?.textContent === 'Wrong email or password.'`)
}

// TestBrowserQueue: in queue mode the Buy button says pending, checks the
// order by itself until the worker confirms it; a full queue says busy and
// counts down the Retry-After seconds before it lets the buyer try again.
func TestBrowserQueue(t *testing.T) {
	needChromium(t)
	t.Run("pending then confirmed", func(t *testing.T) {
		s := startServer(t, "ORDER_MODE=queue")
		product, _, _ := saleOpenNow(t, s, 5)
		b := newBrowser(t, s.baseURL)
		b.signUp("erin@example.com", "erin-password")
		b.open("#/product/" + product)
		b.waitVisible("#buy")
		b.recordOutcomes()
		b.do("buy", chromedp.Click(chromedp.ID("buy")))
		b.waitOutcome("confirmed", "Confirmed")
		b.waitJS("pending shown before confirmed", `window.outcomes.join(' ').includes('pending confirmed')`)
	})
	t.Run("busy", func(t *testing.T) {
		s := startServer(t, "ORDER_MODE=queue", "ORDERS_QUEUE_MAX_QUEUED=1", "ORDERS_WORKER_CONCURRENCY=0", "ORDERS_QUEUE_RETRY_AFTER_SECONDS=2")
		product, _, _ := saleOpenNow(t, s, 5)
		first := registerUsers(t, s, 1)[0]
		if code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", first, "{}"); code != 202 {
			t.Fatalf("first order = %d %v, want 202", code, body)
		}
		b := newBrowser(t, s.baseURL)
		b.signUp("frank@example.com", "frank-password")
		b.open("#/product/" + product)
		b.waitVisible("#buy")
		b.recordOutcomes()
		b.do("buy", chromedp.Click(chromedp.ID("buy")))
		b.waitOutcome("busy", "Busy")
		b.waitJS("the Retry-After countdown from 2s", `window.messages.some((m) => m.includes('Try again in 2s'))`)
		b.waitJS("the button back after the countdown", `!document.getElementById('buy').disabled &&
			document.querySelector('#buy-result [data-testid=buy-message]').textContent.includes('You can try again now')`)
	})
}

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		testenv.Missing(t, "no %s; install Debian's chromium package (make browser) to run the browser tests", chromiumPath)
	}
}

// browser is one headless Chromium tab and the server it talks to.
type browser struct {
	t       *testing.T
	ctx     context.Context
	baseURL string
}

func newBrowser(t *testing.T, baseURL string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox, // root in a container
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Env("TZ=" + browserZone),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser without a deadline
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	b := &browser{t: t, ctx: tctx, baseURL: baseURL}
	t.Cleanup(func() {
		if t.Failed() {
			b.screenshot()
		}
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(baseURL+"/")); err != nil {
		t.Fatalf("open page: %v", err)
	}
	return b
}

// screenshot saves the page to a folder under os.TempDir() that outlives the test.
func (b *browser) screenshot() {
	ctx, cancel := context.WithTimeout(chromedpParent(b.ctx), 10*time.Second)
	defer cancel()
	dir := filepath.Join(os.TempDir(), "flashsale-browser-test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Logf("screenshot: %v", err)
		return
	}
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + '\n' + document.body.innerText`)); err == nil {
		b.t.Logf("page at failure:\n%s", text)
	}
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.png", b.t.Name(), time.Now().Format("20060102-150405")))
	if err := os.WriteFile(path, img, 0o644); err != nil {
		b.t.Logf("screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot saved to %s", path)
}

// chromedpParent is the tab context without the test deadline, so a
// screenshot still works after a timeout.
func chromedpParent(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

// open moves the single-page app to a route (a same-document navigation).
func (b *browser) open(hash string) {
	b.t.Helper()
	b.do("open "+hash, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %s`, jsString(hash))))
}

func (b *browser) waitVisible(css string) {
	b.t.Helper()
	b.do("wait for "+css, chromedp.WaitVisible(chromedp.CSS(css)))
}

// waitJS waits until the JavaScript expression is truthy.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	b.do("wait for "+what, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
}

func (b *browser) text(css string) string {
	b.t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s)?.textContent ?? ''`, jsString(css))))
	if err != nil {
		b.t.Fatalf("text of %s: %v", css, err)
	}
	return got
}

// waitOutcome waits for the Buy button's outcome and checks its words.
func (b *browser) waitOutcome(kind, words string) {
	b.t.Helper()
	b.waitJS("outcome "+kind, fmt.Sprintf(`document.querySelector('#buy-result')?.dataset.outcome === %s`, jsString(kind)))
	if got := b.text(`#buy-result [data-testid=buy-message]`); !strings.HasPrefix(got, words) {
		b.t.Errorf("outcome %s says %q, want it to start with %q", kind, got, words)
	}
}

// recordOutcomes keeps every outcome the Buy button shows in window.outcomes,
// so a test can see a state that passes quickly (pending) without timing it.
func (b *browser) recordOutcomes() {
	b.t.Helper()
	b.do("record outcomes", chromedp.Evaluate[chromedp.Void](`window.outcomes = []; window.messages = [];
		new MutationObserver(() => {
			const el = document.getElementById('buy-result');
			const o = el?.dataset.outcome;
			if (o && window.outcomes[window.outcomes.length - 1] !== o) window.outcomes.push(o);
			const m = el?.querySelector('[data-testid=buy-message]')?.textContent;
			if (m && window.messages[window.messages.length - 1] !== m) window.messages.push(m);
		}).observe(document.getElementById('buy-result'), {attributes: true, childList: true, subtree: true, characterData: true})`))
}

// createProduct fills the admin's product form and returns the new id.
func (b *browser) createProduct(name, price, quantity string) string {
	b.t.Helper()
	b.do("create product "+name,
		chromedp.Evaluate[chromedp.Void](`document.getElementById('product-result').hidden = true`),
		chromedp.SendKeys(chromedp.ID("product-name"), name),
		chromedp.SendKeys(chromedp.ID("product-price"), price),
		chromedp.SendKeys(chromedp.ID("product-quantity"), quantity),
		chromedp.Click(chromedp.ID("product-submit")))
	b.waitJS("product "+name+" created", fmt.Sprintf(
		`!document.getElementById('product-result').hidden && document.querySelector('#product-result a')?.textContent === %s &&
		document.getElementById('sale-product').value === document.getElementById('product-result').dataset.productId`, jsString(name)))
	id, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('product-result').dataset.productId`))
	if err != nil || id == "" {
		b.t.Fatalf("product id: %q, %v", id, err)
	}
	return id
}

// createSale fills the sale form with local times (in the browser's zone)
// for the product selected there.
func (b *browser) createSale(start, end time.Time) {
	b.t.Helper()
	const layout = "2006-01-02T15:04:05"
	b.do("create sale",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('sale-result').hidden = true`),
		chromedp.SetValue(chromedp.ID("sale-starts"), start.Format(layout)),
		chromedp.SetValue(chromedp.ID("sale-ends"), end.Format(layout)),
		chromedp.Click(chromedp.ID("sale-submit")))
	b.waitJS("the sale created", `!document.getElementById('sale-result').hidden || !document.getElementById('sale-error').hidden`)
	if msg := b.text("#sale-error"); msg != "" && !strings.Contains(b.text("#sale-result"), "Sale created") {
		b.t.Fatalf("create sale: %s", msg)
	}
}

func (b *browser) signUp(email, password string) {
	b.t.Helper()
	b.open("#/signup")
	b.waitVisible("#signup-email")
	b.do("sign up "+email,
		chromedp.SendKeys(chromedp.ID("signup-email"), email),
		chromedp.SendKeys(chromedp.ID("signup-password"), password),
		chromedp.Click(chromedp.ID("signup-submit")))
	b.waitJS("signed in as "+email, fmt.Sprintf(`document.getElementById('whoami').textContent === %s && location.hash === '#/'`, jsString(email)))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	raw, _ := json.Marshal(s)
	return string(raw)
}
