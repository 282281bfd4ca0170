package docker

import (
	"encoding/json"
	"strconv"
	"testing"
)

func itoa(i int) string { return strconv.Itoa(i) }

// reflectJSON compares values the way the daemon stores them: as JSON.
func reflectJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
