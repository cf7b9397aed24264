package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/orchestrator"
	"github.com/redis/go-redis/v9"
)

// Retention says how long finished pipelines are kept. Zero keeps them forever.
type Retention struct {
	// Pipelines is how long a finished pipeline's record (and everything of it) is kept.
	Pipelines time.Duration
	// Logs is how long a finished pipeline's job logs are kept; the record may stay longer.
	Logs time.Duration
}

// Swept is what one housekeeping run removed.
type Swept struct {
	// Ran is false when another process had this run (see Housekeep).
	Ran bool
	// Pipelines and Logs count the pipelines removed and those whose logs were removed;
	// Backfilled counts finished pipelines recorded before their end was kept, given one.
	Pipelines, Logs, Backfilled int
}

// keyEnded is the sorted set of finished pipelines still kept (score = when each ended, unix
// milliseconds); keyLogged is those of them whose logs are still kept. Housekeep expires by them.
func (s *Store) keyEnded() string  { return s.prefix + ":ended" }
func (s *Store) keyLogged() string { return s.prefix + ":logged" }

// keyHousekeeping is held by the process doing this interval's housekeeping; keyBackfill is how
// far the backfill of ends got through the index (the last id looked at).
func (s *Store) keyHousekeeping() string { return s.prefix + ":housekeeping" }
func (s *Store) keyBackfill() string     { return s.prefix + ":housekeeping:backfill" }

// housekeepBatch bounds the pipelines one run removes (and backfills): a long-neglected store
// is cleaned over a few runs rather than in one that holds Redis up.
const housekeepBatch = 500

// Housekeep removes what the retention lets go: finished pipelines older than r.Pipelines with
// their logs, outbox, locks and index entries, and the logs of those older than r.Logs. Every
// process schedules it on the same interval; the first to take the interval's lock runs it and
// the others return at once (Swept.Ran false), so any number of replicas make one run per tick.
func (s *Store) Housekeep(ctx context.Context, r Retention, now time.Time, every time.Duration) (Swept, error) {
	ok, err := s.rdb.SetNX(ctx, s.keyHousekeeping(), strconv.FormatInt(now.UnixMilli(), 10), max(every*9/10, time.Millisecond)).Result()
	if err != nil || !ok {
		return Swept{}, err
	}
	sw := Swept{Ran: true}
	if sw.Backfilled, err = s.backfillEnds(ctx); err != nil {
		return sw, fmt.Errorf("backfill ends: %w", err)
	}
	if r.Logs > 0 {
		ids, err := s.idsBefore(ctx, s.keyLogged(), now.Add(-r.Logs))
		if err != nil {
			return sw, err
		}
		for _, id := range ids {
			if err := s.expire(ctx, id, false); err != nil {
				return sw, err
			}
			sw.Logs++
		}
	}
	if r.Pipelines > 0 {
		ids, err := s.idsBefore(ctx, s.keyEnded(), now.Add(-r.Pipelines))
		if err != nil {
			return sw, err
		}
		for _, id := range ids {
			// A pipeline whose image is still kept waits for the sweep to remove the image:
			// the sweep finds the image through the record.
			if _, err := s.rdb.ZScore(ctx, s.keyFinished(), strconv.FormatInt(id, 10)).Result(); err == nil {
				continue
			}
			if err := s.expire(ctx, id, true); err != nil {
				return sw, err
			}
			sw.Pipelines++
		}
	}
	return sw, nil
}

// idsBefore lists the pipelines of a sorted set scored by time (unix milliseconds) up to t, at
// most housekeepBatch of them, oldest first: every set the sweep and the housekeeping read.
func (s *Store) idsBefore(ctx context.Context, key string, t time.Time) ([]int64, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(t.UnixMilli(), 10), Count: housekeepBatch,
	}).Result()
	if err != nil {
		return nil, err
	}
	return parseIDs(ids), nil
}

// expire removes a finished pipeline's logs, and with whole its record and every key and index
// entry of it, in one MULTI.
func (s *Store) expire(ctx context.Context, id int64, whole bool) error {
	p, err := s.Pipeline(ctx, id)
	if err != nil && !errors.Is(err, orchestrator.ErrNotFound) {
		return err
	}
	var keys []string
	if p != nil {
		for _, j := range p.Jobs {
			for a := 1; a <= j.Attempt; a++ {
				keys = append(keys, s.keyLog(id, j.Name, a), s.keyLogDropped(id, j.Name, a))
			}
		}
	}
	_, err = s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		if len(keys) > 0 {
			tx.Del(ctx, keys...)
		}
		tx.ZRem(ctx, s.keyLogged(), id)
		if !whole {
			return nil
		}
		tx.Del(ctx, s.keyPipeline(id), s.keyOutbox(id), s.keyStatusLock(id))
		for _, key := range []string{s.keyEnded(), s.keyIndex(), s.keyUnstarted(), s.keyWaiting(), s.keyOpen(), s.keyOutboxes()} {
			tx.ZRem(ctx, key, id)
		}
		if p != nil && p.ReleaseBy().Kind == orchestrator.TriggerPush {
			tx.ZRem(ctx, s.keyBranch(p.Trigger.Project, p.Trigger.Ref), id)
		}
		return nil
	})
	return err
}

// backfillEnds gives the finished pipelines recorded before ends were kept (keyEnded) the time
// their last job ended, so they expire like the others: a batch of the index per run, from
// where the last run stopped. New pipelines get theirs from MarkFinished.
func (s *Store) backfillEnds(ctx context.Context) (int, error) {
	from, err := s.rdb.Get(ctx, s.keyBackfill()).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	ids, err := s.rdb.ZRangeByScore(ctx, s.keyIndex(), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(from, 10), Max: "+inf", Count: housekeepBatch,
	}).Result()
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	n := 0
	for _, id := range parseIDs(ids) {
		if _, err := s.rdb.ZScore(ctx, s.keyEnded(), strconv.FormatInt(id, 10)).Result(); err == nil {
			continue
		}
		p, err := s.Pipeline(ctx, id)
		if err != nil || !p.State().Terminal() {
			continue // unreadable or still going: its end, when it comes, is recorded then
		}
		ended := p.EndedAt()
		if err := s.recordEnd(ctx, s.rdb, id, ended); err != nil {
			return n, err
		}
		n++
	}
	last := parseIDs(ids[len(ids)-1:])
	if len(last) == 1 {
		return n, s.rdb.Set(ctx, s.keyBackfill(), last[0], 0).Err()
	}
	return n, nil
}

// recordEnd records when a pipeline ended, for the retention, unless an end is recorded: the
// first end counts, so a retry does not extend a pipeline's life.
func (s *Store) recordEnd(ctx context.Context, c redis.Cmdable, id int64, at time.Time) error {
	z := redis.Z{Score: float64(at.UnixMilli()), Member: id}
	if err := c.ZAddNX(ctx, s.keyEnded(), z).Err(); err != nil {
		return err
	}
	return c.ZAddNX(ctx, s.keyLogged(), z).Err()
}
