package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// openRedis connects to the configured Redis, or starts an embedded one when none is set. The
// URL is redis://, rediss:// or unix:// (go-redis's ParseURL), or a Sentinel URL (see
// sentinelOptions): the client then asks the sentinels for the master, and again after a
// failover. Neither the URL nor its password is ever part of an error or a log line.
func openRedis(ctx context.Context, url string, log *zap.Logger) (*redis.Client, func(), error) {
	if url == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return nil, nil, fmt.Errorf("embedded redis: %w", err)
		}
		log.Warn("NO REDIS CONFIGURED: using an embedded in-memory Redis. Every pipeline, log and " +
			"queued job is lost when this process stops, and no other gantry process can share it. " +
			"Set redis.url (or GANTRY_REDIS_URL) for anything but a trial.")
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		return rdb, func() { rdb.Close(); mr.Close() }, nil
	}
	var rdb *redis.Client
	var where string
	if isSentinelURL(url) {
		opt, err := sentinelOptions(url)
		if err != nil {
			return nil, nil, err
		}
		rdb = redis.NewFailoverClient(opt)
		where = fmt.Sprintf("master %q of the sentinels %s", opt.MasterName, strings.Join(opt.SentinelAddrs, ","))
		log.Info("redis through sentinel", zap.String("master", opt.MasterName), zap.Strings("sentinels", opt.SentinelAddrs),
			zap.Bool("tls", opt.TLSConfig != nil))
	} else {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, errors.New("redis.url is not a valid Redis URL") // the URL may hold a password
		}
		rdb = redis.NewClient(opt)
		where = opt.Addr
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("redis at %s: %w", where, err)
	}
	warnNoPersistence(pingCtx, rdb, log)
	return rdb, func() { rdb.Close() }, nil
}

// Sentinel URL schemes: plain and TLS (to the sentinels and to the servers alike).
const (
	sentinelScheme    = "redis+sentinel"
	sentinelTLSScheme = "rediss+sentinel"
)

// sentinelMaxRetries is how many times a command is retried through a Sentinel URL by default.
const sentinelMaxRetries = 10

func isSentinelURL(u string) bool {
	s, _, _ := strings.Cut(u, "://")
	s = strings.ToLower(s)
	return s == sentinelScheme || s == sentinelTLSScheme
}

// sentinelOptions reads a Sentinel URL:
//
//	redis+sentinel://[user:password@]host1:port1[,host2:port2…]/<master-name>[/<db>][?option=value&…]
//	rediss+sentinel://…   the same over TLS, to the sentinels and the servers
//
// The hosts are the sentinels (port 26379 when left out); the user and password are the Redis
// servers' (master and replicas), as in a redis:// URL. The options are go-redis's failover URL
// options (redis.ParseFailoverURL: dial_timeout, read_timeout, pool_size, max_retries,
// skip_verify, replica_only…), and two more for sentinels that have a password of their own:
// sentinel_username and sentinel_password. The URL is turned into go-redis's own failover form
// and handed to ParseFailoverURL, so every option it knows works here. No error quotes the URL.
func sentinelOptions(raw string) (*redis.FailoverOptions, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	rest, query, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	var userinfo string
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i], authority[i+1:]
	}
	var addrs []string
	for _, h := range strings.Split(authority, ",") {
		if h == "" {
			return nil, errors.New("redis.url: empty sentinel address in the host list")
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil { // no port
			host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), "26379"
		}
		if host == "" || strings.ContainsAny(host, "/@?#[] ") {
			return nil, fmt.Errorf("redis.url: %q is not a sentinel host[:port]", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, port))
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if parts[0] == "" || len(parts) > 2 {
		return nil, errors.New("redis.url: a sentinel URL's path is /<master-name> or /<master-name>/<db>")
	}
	master, err := url.PathUnescape(parts[0])
	if err != nil {
		return nil, errors.New("redis.url: the master name is not a valid URL path segment")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, errors.New("redis.url: the query is not valid") // it may hold a password
	}
	if q.Has("master_name") || q.Has("addr") {
		return nil, errors.New("redis.url: the master name and the sentinels are given in the path and the host list, not as master_name or addr")
	}
	sentinelUser, sentinelPassword := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	q.Set("master_name", master)
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	if len(parts) == 2 {
		if q.Has("db") {
			return nil, errors.New("redis.url: the database is given twice, in the path and as db")
		}
		q.Set("db", parts[1])
	}
	goScheme := "redis"
	if strings.EqualFold(scheme, sentinelTLSScheme) {
		goScheme = "rediss"
	}
	// go-redis's form: the first sentinel as the host, the others as addr, the master as
	// master_name; its userinfo would be the sentinels' credentials, so none is put there.
	u := url.URL{Scheme: goScheme, Host: addrs[0], RawQuery: q.Encode()}
	opt, err := redis.ParseFailoverURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("redis.url: %s", scrub(err.Error(), q.Get("password"), sentinelPassword))
	}
	if userinfo != "" {
		if q.Has("username") || q.Has("password") {
			return nil, errors.New("redis.url: the credentials are given twice, before the host list and as username or password")
		}
		ui, err := url.Parse("redis://" + userinfo + "@h")
		if err != nil || ui.User == nil {
			return nil, errors.New("redis.url: the user and password are not valid (percent-encode reserved characters)")
		}
		opt.Username = ui.User.Username() // as redis.ParseURL reads them: user:password, or :password
		opt.Password, _ = ui.User.Password()
	}
	opt.SentinelUsername, opt.SentinelPassword = sentinelUser, sentinelPassword
	// While the sentinels elect a new master (down-after-milliseconds, then a second or two),
	// the old one refuses connections. A command is retried for about 6 s, not go-redis's
	// tenth of a second, so that a failover that short costs latency, not work: a job whose
	// write failed would be retried, and run again. The URL's own settings win.
	if !q.Has("max_retries") {
		opt.MaxRetries = sentinelMaxRetries
	}
	if !q.Has("min_retry_backoff") {
		opt.MinRetryBackoff = 100 * time.Millisecond
	}
	if !q.Has("max_retry_backoff") {
		opt.MaxRetryBackoff = time.Second
	}
	if opt.TLSConfig != nil {
		// ParseFailoverURL names the first sentinel as the server of every connection; left
		// empty, each connection checks the certificate of the host it dials.
		opt.TLSConfig.ServerName = ""
	}
	return opt, nil
}

// scrub removes secrets from a message.
func scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}
