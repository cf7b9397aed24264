package store

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DefaultLogCap is how many bytes of a job attempt's log are kept when Options.LogCap is 0.
const DefaultLogCap = 1 << 20

// A job attempt's log is two keys: the text kept (keyLog), and how many bytes were cut from
// its head to stay under the cap (keyLogDropped). Every byte a job ever wrote thus has an
// offset, dropped + its position in the text, that never changes, so a reader following a
// running job asks for "everything from offset N" and never sees a byte twice, even when the
// head it already read has been cut meanwhile.

// appendLog appends output to a log and cuts the head when the log goes over the cap. It cuts
// down to keep bytes (a little under the cap), not to the cap itself, so that a chatty job
// copies the kept text once every cap-keep bytes of output, not on every write; and it never
// starts the kept text in the middle of a UTF-8 character.
//
//	KEYS[1] log text   KEYS[2] dropped counter
//	ARGV[1] output     ARGV[2] cap (bytes)      ARGV[3] keep (bytes kept after a cut, ≤ cap)
//	returns the log's end offset: how many bytes were ever appended
var appendLog = redis.NewScript(`
local n = redis.call("APPEND", KEYS[1], ARGV[1])
local dropped = tonumber(redis.call("GET", KEYS[2]) or "0")
if n <= tonumber(ARGV[2]) then return dropped + n end
local cut = n - tonumber(ARGV[3])
local head = redis.call("GETRANGE", KEYS[1], cut, cut + 2)
local i = 1
while i <= #head do
  local b = string.byte(head, i)
  if b < 128 or b >= 192 then break end
  i = i + 1
end
cut = cut + i - 1
redis.call("SET", KEYS[1], redis.call("GETRANGE", KEYS[1], cut, -1))
dropped = redis.call("INCRBY", KEYS[2], cut)
return dropped + n - cut
`)

// readLog reads a log from an offset.
//
//	KEYS[1] log text   KEYS[2] dropped counter
//	ARGV[1] offset: bytes since the log began, dropped ones included; negative: the last
//	        -ARGV[1] bytes kept
//	returns {dropped, start, text}: start is the offset of the first byte of text
var readLog = redis.NewScript(`
local dropped = tonumber(redis.call("GET", KEYS[2]) or "0")
local off = tonumber(ARGV[1])
local from
if off < 0 then
  from = math.max(0, redis.call("STRLEN", KEYS[1]) + off)
else
  from = math.max(0, off - dropped)
end
return {dropped, dropped + from, redis.call("GETRANGE", KEYS[1], from, -1)}
`)

// AppendLog implements orchestrator.Store. The log keeps the last LogCap bytes of a job
// attempt's output.
func (s *Store) AppendLog(ctx context.Context, pipelineID int64, job string, attempt int, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	keys := []string{s.keyLog(pipelineID, job, attempt), s.keyLogDropped(pipelineID, job, attempt)}
	keep := s.logCap - s.logCap/16
	if err := appendLog.Run(ctx, s.rdb, keys, p, s.logCap, keep).Err(); err != nil {
		return fmt.Errorf("append log of pipeline %d job %s: %w", pipelineID, job, err)
	}
	return nil
}

// Log returns a job attempt's whole log as it is served: what is kept, after a line that says
// how much was dropped to stay under the cap, if anything was.
func (s *Store) Log(ctx context.Context, pipelineID int64, job string, attempt int) (string, error) {
	text, _, err := s.LogFrom(ctx, pipelineID, job, attempt, 0)
	return text, err
}

// LogFrom reads a job attempt's log from offset, counted in bytes since the log began
// (including bytes dropped to stay under the cap), and returns the text and the offset to
// read on from. A negative offset reads the last -offset bytes kept instead. When bytes that
// were asked for are not in text, text starts with a line that says so.
func (s *Store) LogFrom(ctx context.Context, pipelineID int64, job string, attempt int, offset int64) (string, int64, error) {
	keys := []string{s.keyLog(pipelineID, job, attempt), s.keyLogDropped(pipelineID, job, attempt)}
	res, err := readLog.Run(ctx, s.rdb, keys, offset).Slice()
	if err != nil {
		return "", 0, fmt.Errorf("read log of pipeline %d job %s: %w", pipelineID, job, err)
	}
	if len(res) != 3 {
		return "", 0, fmt.Errorf("read log of pipeline %d job %s: script answered %v", pipelineID, job, res)
	}
	dropped, _ := res[0].(int64)
	start, _ := res[1].(int64)
	text, _ := res[2].(string)
	from := max(offset, 0)
	if offset < 0 {
		// The last bytes may begin inside a UTF-8 character.
		for i := 0; i < 3 && len(text) > 0 && text[0]&0xC0 == 0x80; i++ {
			text, start = text[1:], start+1
		}
	}
	next := start + int64(len(text))
	switch {
	case start == from:
	case start == dropped && from == 0:
		text = fmt.Sprintf("[gantry: the first %d bytes of this log were dropped to stay under the %s cap]\n", start, sizeText(s.logCap)) + text
	case start == dropped:
		text = fmt.Sprintf("[gantry: %d more bytes of this log were dropped to stay under the %s cap]\n", start-from, sizeText(s.logCap)) + text
	default:
		text = fmt.Sprintf("[gantry: the first %d bytes of this log are not shown here]\n", start) + text
	}
	return text, next, nil
}

// sizeText says a size the way people write a cap: "1 MiB", "64 KiB", "1000 bytes".
func sizeText(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
