package jobs

import (
	"strings"
	"testing"
)

// TestConnectTLSNeedsCertificates: an engine configured for TLS without its files is refused
// at start, naming what is missing, instead of talking plain HTTP.
func TestConnectTLSNeedsCertificates(t *testing.T) {
	_, err := Connect(t.Context(), Options{Host: "tcp://127.0.0.1:1", CertPath: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "ca.pem") {
		t.Errorf("Connect(CertPath without files) error = %v, want one naming ca.pem", err)
	}
}
