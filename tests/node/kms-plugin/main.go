// A KMS v2 plugin for kube-apiserver whose key-encryption key lives in a PKCS#11 token (SoftHSM in the node suite),
// after Kubernetes' own mock plugin (k8s.io/kms/internal/plugins/_mock), which its e2e runs the same way: that
// plugin's source is not published as a module, so this is the same shape built from the published parts, k8s.io/kms's
// gRPC service and crypto11. The API server sends each data-encryption key here to be wrapped with AES-256-GCM by the
// token; the key never leaves the token and this process holds no key material.
package main

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ThalesIgnite/crypto11"
	"k8s.io/kms/pkg/service"
)

const nonceSize = 12

type plugin struct {
	aead  cipher.AEAD
	keyID string
}

func (p *plugin) Encrypt(_ context.Context, _ string, plaintext []byte) (resp *service.EncryptResponse, err error) {
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	defer func() { // crypto11's Seal panics on a token error; the API server gets an error instead
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("token refused to encrypt: %v", r)
		}
	}()
	return &service.EncryptResponse{Ciphertext: p.aead.Seal(nonce, nonce, plaintext, nil), KeyID: p.keyID}, nil
}

func (p *plugin) Decrypt(_ context.Context, _ string, req *service.DecryptRequest) ([]byte, error) {
	if req.KeyID != p.keyID {
		return nil, fmt.Errorf("wrapped by key %q, this token holds %q", req.KeyID, p.keyID)
	}
	if len(req.Ciphertext) < nonceSize {
		return nil, errors.New("ciphertext shorter than its nonce")
	}
	return p.aead.Open(nil, req.Ciphertext[:nonceSize], req.Ciphertext[nonceSize:], nil)
}

func (p *plugin) Status(_ context.Context) (*service.StatusResponse, error) {
	return &service.StatusResponse{Version: "v2", Healthz: "ok", KeyID: p.keyID}, nil
}

// open finds the AES key labelled `label` in the token, making it there on first use, and names it by label and a
// digest of its token id (a rotated key under the same label gets a new KeyID, so the API server re-wraps).
func open(module, token, pinFile, label string) (*plugin, error) {
	pin, err := os.ReadFile(pinFile)
	if err != nil {
		return nil, err
	}
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path: module, TokenLabel: token, Pin: strings.TrimSpace(string(pin)), GCMIVLength: nonceSize,
	})
	if err != nil {
		return nil, fmt.Errorf("opening token %q: %w", token, err)
	}
	key, err := ctx.FindKey(nil, []byte(label))
	if err != nil {
		return nil, err
	}
	if key == nil {
		id := make([]byte, 16)
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
		if key, err = ctx.GenerateSecretKeyWithLabel(id, []byte(label), 256, crypto11.CipherAES); err != nil {
			return nil, fmt.Errorf("making key %q: %w", label, err)
		}
	}
	attributes, err := ctx.GetAttribute(key, crypto11.CkaId)
	if err != nil {
		return nil, err
	}
	aead, err := key.NewGCM()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(attributes.Value)
	return &plugin{aead: aead, keyID: label + "-" + hex.EncodeToString(digest[:6])}, nil
}

func main() {
	socket := flag.String("listen", "", "unix socket the API server's EncryptionConfiguration names")
	module := flag.String("module", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module")
	token := flag.String("token", "keyguard-kms", "token label")
	pinFile := flag.String("pin-file", "", "file holding the token's user PIN")
	label := flag.String("key", "kek", "label of the AES key-encryption key in the token")
	flag.Parse()
	p, err := open(*module, *token, *pinFile, *label)
	if err != nil {
		log.Fatal(err)
	}
	_ = os.Remove(*socket)
	server := service.NewGRPCService(*socket, 5*time.Second, p)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-stop; server.Shutdown() }()
	log.Printf("KMS v2 plugin on %s, key %s", *socket, p.keyID)
	if err := server.ListenAndServe(); err != nil {
		log.Fatal(err)
	}
}
