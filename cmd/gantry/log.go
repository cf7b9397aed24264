package main

import (
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger writes JSON lines to w, one per event.
func newLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel)
	return zap.New(core)
}

// cronLogger routes the scheduler's own logs to zap.
type cronLogger struct{ s *zap.SugaredLogger }

func (l cronLogger) Info(msg string, kv ...any) { l.s.Debugw(msg, kv...) }
func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.s.Errorw(msg, append(kv, "error", err)...)
}
