package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// TestWatchSaleStatus: the stream sends the status at once and again when
// an order changes it, over gRPC and over REST (one JSON object per line).
func TestWatchSaleStatus(t *testing.T) {
	s := startServer(t, "ORDER_MODE=sync")
	product, _, _ := saleOpenNow(t, s, 2)
	tokens := registerUsers(t, s, 1)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := flashsalev1.NewFlashSaleServiceClient(s.conn).WatchSaleStatus(ctx, &flashsalev1.WatchSaleStatusRequest{ProductId: product})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetStatus().GetState() != flashsalev1.SaleState_SALE_STATE_ACTIVE || first.GetStatus().GetRemaining() != 2 {
		t.Fatalf("first update = %v, want ACTIVE with 2 left", first.GetStatus())
	}

	req, err := http.NewRequestWithContext(ctx, "GET", s.baseURL+"/v1/products/"+product+"/sale-status:watch", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	var line struct {
		Result struct {
			Status struct {
				State     string `json:"state"`
				Remaining int    `json:"remaining"`
			} `json:"status"`
		} `json:"result"`
	}
	if !lines.Scan() {
		t.Fatalf("REST watch ended: %v", lines.Err())
	}
	if err := json.Unmarshal(lines.Bytes(), &line); err != nil || line.Result.Status.State != "SALE_STATE_ACTIVE" || line.Result.Status.Remaining != 2 {
		t.Fatalf("REST first update = %q (%v)", lines.Bytes(), err)
	}

	if code, body := httpDo(t, "POST", s.baseURL+"/v1/products/"+product+"/orders", tokens[0], "{}"); code != 200 {
		t.Fatalf("order = %d %v", code, body)
	}
	next, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if next.GetStatus().GetRemaining() != 1 {
		t.Errorf("update after an order = %v, want 1 left", next.GetStatus())
	}
	if !lines.Scan() {
		t.Fatalf("REST watch ended: %v", lines.Err())
	}
	if err := json.Unmarshal(lines.Bytes(), &line); err != nil || line.Result.Status.Remaining != 1 {
		t.Errorf("REST update after an order = %q (%v), want 1 left", lines.Bytes(), err)
	}
}
