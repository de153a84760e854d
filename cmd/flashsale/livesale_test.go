package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// artefactDir is where browser tests keep what a person may want to look
// at after a run (ARTEFACT_DIR, else .artefacts/ at the top of the
// repository, which git ignores).
func artefactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ARTEFACT_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", ".artefacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowserLiveSale: the admin's live view of a sale charts admissions
// per second and units left, and counts the decisions by outcome, as
// orders arrive; a screenshot of it is kept in the artefact folder.
func TestBrowserLiveSale(t *testing.T) {
	needChromium(t)
	const stock, buyers = 40, 30
	s := startServer(t, "ORDER_MODE=sync")
	product, _, _ := saleOpenNow(t, s, stock)
	tokens := registerUsers(t, s, buyers)

	b := newBrowser(t, s.baseURL)
	b.do("a wide window", chromedp.EmulateViewport(1000, 900))
	b.open("#/signin")
	b.waitVisible("#signin-email")
	b.do("sign in as admin",
		chromedp.SendKeys(chromedp.ID("signin-email"), testAdminEmail),
		chromedp.SendKeys(chromedp.ID("signin-password"), testAdminPassword),
		chromedp.Click(chromedp.ID("signin-submit")))
	b.waitVisible("#product-form")
	b.waitJS("the live link of the product", fmt.Sprintf(`!!document.querySelector('#admin-products a[href="#/admin/live/%s"]')`, product))
	b.open("#/admin/live/" + product)
	b.waitJS("the sale's stock, before any order", fmt.Sprintf(
		`document.getElementById('live-remaining')?.textContent === '%d' && +document.getElementById('live-chart')?.dataset.points >= 1`, stock))
	pointsBefore := b.number(`+document.getElementById('live-chart').dataset.points`)

	// Orders arrive over about three seconds, two sampling periods at least.
	orders := flashsalev1.NewOrderServiceClient(s.conn)
	var wg sync.WaitGroup
	for i, token := range tokens {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			if _, err := orders.PlaceOrder(bearer(context.Background(), token), &flashsalev1.PlaceOrderRequest{ProductId: product}); err != nil {
				t.Errorf("PlaceOrder: %v", err)
			}
		})
	}
	b.waitJS("admissions charted while they arrive", `+document.getElementById('live-rate-line').dataset.max > 0`)
	wg.Wait()
	b.waitJS("every order counted, the stock down", fmt.Sprintf(
		`document.getElementById('live-admitted').textContent === '%d' &&
		document.querySelector('#live-outcomes [data-outcome=CONFIRMED]')?.textContent === '%d' &&
		document.getElementById('live-remaining').textContent === '%d'`, buyers, buyers, stock-buyers))
	if after := b.number(`+document.getElementById('live-chart').dataset.points`); after < pointsBefore+2 {
		t.Errorf("the chart has %v points after the orders, %v before: it did not update as they arrived", after, pointsBefore)
	}
	if n := b.number(`document.getElementById('live-rate-line').getAttribute('points').split(' ').length`); n < 3 {
		t.Errorf("the admissions line has %v points", n)
	}

	img, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // quality 100: a PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artefactDir(t), "live-sale.png")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the live view: %s", path)
}

// number evaluates a JavaScript expression to a number.
func (b *browser) number(expr string) float64 {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`String(`+expr+`)`))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		b.t.Fatalf("%s = %q, not a number", expr, s)
	}
	return n
}
