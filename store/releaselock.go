package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// DefaultReleaseLockTTL is how long a release lock outlives its holder's last renewal. It only
// has to cover a lost worker: a live holder renews it every third of it for as long as its push
// takes, so it can be short and a lost worker's branch is free again soon.
const DefaultReleaseLockTTL = time.Minute

// renewLock extends a lock only while it still holds this holder's token.
//
//	KEYS[1] lock; ARGV[1] token; ARGV[2] ttl in milliseconds
//	returns 1 when extended, 0 when the lock is no longer this holder's
var renewLock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`)

// errUnlocked ends a held context at unlock: the holder let go, nothing was lost.
var errUnlocked = errors.New("unlocked")

// LockRelease implements orchestrator.Store: the lock is renewed by a goroutine that unlock
// stops and waits for, so no renewal outlives the release.
func (s *Store) LockRelease(ctx context.Context, project, ref string) (context.Context, func(), error) {
	key, ttl := s.keyReleaseLock(project, ref), s.releaseLockTTL
	token, err := s.take(ctx, key, ttl)
	if err != nil {
		return nil, nil, err
	}
	return s.hold(ctx, key, token, ttl, func(ctx context.Context) (bool, error) {
		n, err := renewLock.Run(ctx, s.rdb, []string{key}, token, ttl.Milliseconds()).Int()
		return n == 1, err
	}, nil)
}

// hold keeps a lock taken with token: renew runs every third of ttl, by a goroutine that the
// returned unlock stops and waits for before it deletes the lock (and runs forget, when set).
// held ends with ErrLockLost when renew says the lock is someone else's, or when no renewal got
// through before the lock would have expired; at unlock it ends with errUnlocked.
func (s *Store) hold(ctx context.Context, key, token string, ttl time.Duration, renew func(context.Context) (bool, error), forget func(context.Context)) (context.Context, func(), error) {
	held, end := context.WithCancelCause(ctx)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // ends when unlock closes stop, when the lock is lost, or when ctx ends
		defer close(done)
		renewEvery(held, end, stop, ttl, renew)
	}()
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			close(stop)
			<-done
			end(errUnlocked)
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			unlock.Run(ctx, s.rdb, []string{key}, token)
			if forget != nil {
				forget(ctx)
			}
		})
	}
	return held, unlock, nil
}

// renewEvery renews a lock every third of its TTL (see hold).
func renewEvery(held context.Context, end context.CancelCauseFunc, stop <-chan struct{}, ttl time.Duration, renew func(context.Context) (bool, error)) {
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	expires := time.Now().Add(ttl)
	for {
		select {
		case <-stop:
			return
		case <-held.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(held, ttl/3)
		sent := time.Now()
		ok, err := renew(ctx)
		cancel()
		switch {
		case err == nil && ok:
			expires = sent.Add(ttl)
		case err == nil || !time.Now().Before(expires):
			end(orchestrator.ErrLockLost)
			return
		}
	}
}
