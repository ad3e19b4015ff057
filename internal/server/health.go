package server

import (
	"encoding/json"
	"net/http"
)

// healthHandler serves /healthz (the process is alive and its storage has
// not failed) and /readyz (the node takes requests: bootstrapped and not
// shutting down), as load balancers and orchestrators probe them.
func (s *Server) healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.b.Err(); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, "failed", err.Error())
			return
		}
		writeStatus(w, http.StatusOK, "ok", "")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case s.stopping.Load():
			writeStatus(w, http.StatusServiceUnavailable, "stopping", "")
		case s.b.Err() != nil:
			writeStatus(w, http.StatusServiceUnavailable, "failed", s.b.Err().Error())
		case !s.isReady():
			writeStatus(w, http.StatusServiceUnavailable, "starting", "the cluster is not bootstrapped yet")
		default:
			writeStatus(w, http.StatusOK, "ready", "")
		}
	})
	return mux
}

func writeStatus(w http.ResponseWriter, code int, status, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]string{"status": status}
	if detail != "" {
		body["detail"] = detail
	}
	_ = json.NewEncoder(w).Encode(body)
}
