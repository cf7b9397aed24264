package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// registryClient reads the test registry over its own HTTP API with basic auth, to check what
// gantry pushed without trusting anything gantry says about it.
type registryClient struct {
	host, user, password string
}

func (r registryClient) get(t *testing.T, path, accept string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.host+path, nil)
	req.SetBasicAuth(r.user, r.password)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// tags lists a repository's tags; none when the repository does not exist.
func (r registryClient) tags(t *testing.T, repo string) []string {
	t.Helper()
	resp, body := r.get(t, "/v2/"+repo+"/tags/list", "")
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tags of %s: %d %s", repo, resp.StatusCode, body)
	}
	var out struct{ Tags []string }
	must(t, json.Unmarshal(body, &out))
	slices.Sort(out.Tags)
	return out.Tags
}

// labels returns the config labels and the manifest digest of repo:tag.
func (r registryClient) labels(t *testing.T, repo, tag string) (map[string]string, string) {
	t.Helper()
	resp, body := r.get(t, "/v2/"+repo+"/manifests/"+tag, "application/vnd.docker.distribution.manifest.v2+json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("manifest %s:%s: %d %s", repo, tag, resp.StatusCode, body)
	}
	var m struct{ Config struct{ Digest string } }
	must(t, json.Unmarshal(body, &m))
	cresp, cbody := r.get(t, "/v2/"+repo+"/blobs/"+m.Config.Digest, "")
	if cresp.StatusCode != http.StatusOK {
		t.Fatalf("config blob %s: %d", m.Config.Digest, cresp.StatusCode)
	}
	var c struct {
		Config struct{ Labels map[string]string }
	}
	must(t, json.Unmarshal(cbody, &c))
	return c.Config.Labels, resp.Header.Get("Docker-Content-Digest")
}

func repoPath(image, host string) string {
	return strings.TrimPrefix(image, host+"/")
}

func (r registryClient) String() string { return fmt.Sprintf("registry %s", r.host) }

func countPipelines(t *testing.T, url string) int64 {
	t.Helper()
	opt, err := redis.ParseURL(url)
	must(t, err)
	c := redis.NewClient(opt)
	defer c.Close()
	n, err := c.ZCard(t.Context(), "gantry:pipelines").Result()
	must(t, err)
	return n
}
