// A no-op admission webhook in Go's net/http: it echoes the request's UID and allows. keyguard's admission overhead
// is reported next to this floor and next to a no-op on keyguard's own Python stack (tests/e2e/noop_webhook.py).
// With --patch, it answers /mutate with that fixed JSON patch (keyguard's own, captured by the test), so the API
// server's cost of applying keyguard's patch is measured apart from keyguard's cost of deciding it.
// HTTP/2 is switched off: the API server speaks HTTP/1.1 to Service-backed webhooks, as it does to keyguard.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"strings"
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
	patchFile := flag.String("patch", "", "file holding a base64 JSON patch to answer /mutate with")
	flag.Parse()
	patch := ""
	if *patchFile != "" {
		raw, err := os.ReadFile(*patchFile)
		if err != nil {
			log.Fatal(err)
		}
		patch = strings.TrimSpace(string(raw))
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		var in review
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 3<<20)).Decode(&in); err != nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		response := map[string]any{"uid": in.Request.UID, "allowed": true}
		if patch != "" && r.URL.Path == "/mutate" {
			response["patchType"] = "JSONPatch"
			response["patch"] = patch
		}
		out := map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
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
