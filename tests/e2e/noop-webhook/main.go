// A no-op admission webhook in Go's net/http: it echoes the request's UID and allows. keyguard's admission overhead
// is reported next to this floor and next to a no-op on keyguard's own Python stack (tests/e2e/noop_webhook.py).
// HTTP/2 is switched off: the API server speaks HTTP/1.1 to Service-backed webhooks, as it does to keyguard.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"log"
	"net/http"
)

type review struct {
	Request struct {
		UID string `json:"uid"`
	} `json:"request"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "listen address")
	cert := flag.String("cert", "tls.crt", "serving certificate")
	key := flag.String("key", "tls.key", "serving key")
	flag.Parse()
	handler := func(w http.ResponseWriter, r *http.Request) {
		var in review
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 3<<20)).Decode(&in); err != nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		out := map[string]any{
			"apiVersion": "admission.k8s.io/v1",
			"kind":       "AdmissionReview",
			"response":   map[string]any{"uid": in.Request.UID, "allowed": true},
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
	server := &http.Server{
		Addr:         *addr,
		Handler:      http.HandlerFunc(handler),
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	log.Fatal(server.ListenAndServeTLS(*cert, *key))
}
