package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/flashsale/flashsale/gen/openapiv2"
)

// TestWithVersion: the served document is the generated one with the build's
// version in info.version, everything else kept.
func TestWithVersion(t *testing.T) {
	b, err := withVersion(openapiv2.JSON, "v1.2.3")
	if err != nil {
		t.Fatalf("withVersion on the generated document: %v", err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(openapiv2.JSON, &want); err != nil {
		t.Fatal(err)
	}
	if v := got["info"].(map[string]any)["version"]; v != "v1.2.3" {
		t.Errorf("info.version = %v, want v1.2.3", v)
	}
	want["info"].(map[string]any)["version"] = "v1.2.3"
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("withVersion changed more than info.version")
	}
}
