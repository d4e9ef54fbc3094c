package registry

import (
	"encoding/json"
	"net/http"
)

// writeError answers in the distribution spec's error format.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"code": code, "message": msg, "detail": map[string]any{}}}})
}
