package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FreeAddr returns a loopback address with a port nothing listens on at the moment.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs a program of the test's own, its output in dir/name.log; at cleanup it is
// SIGKILLed, and the end of its log is shown when the test failed.
func Start(t testing.TB, dir, name, bin string, args ...string) *exec.Cmd {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("%s log (last 3000 bytes):\n%s", name, b[max(0, len(b)-3000):])
		}
	})
	return cmd
}

// RedisServer starts Debian's redis-server of the test's own on a free loopback port, keeping
// nothing on disk (its working directory under dir), with args added (such as --replicaof).
// It returns the process and the port; the caller waits for what it needs to be ready.
func RedisServer(t testing.TB, dir, name string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	bin := NeedBinary(t, "redis-server")
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	data := filepath.Join(dir, name)
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	base := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", data,
		"--repl-diskless-sync-delay", "0"}
	return Start(t, dir, name, bin, append(base, args...)...), port
}
