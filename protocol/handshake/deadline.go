package handshake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// deadliner is the part of net.Conn and *quic.Stream that lets a context
// abort blocked I/O.
type deadliner interface {
	SetDeadline(time.Time) error
}

// aLongTimeAgo is a deadline in the past: setting it makes pending and
// future reads and writes fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// session is one handshake's frame I/O under its context.
type session struct {
	ctx context.Context
	rw  io.ReadWriter
}

// begin applies ctx to rw. If rw has SetDeadline, ctx's deadline becomes the
// stream's, and a watcher goroutine moves the deadline into the past when
// ctx is done, waking any blocked Read or Write. stop ends the watcher, waits
// for it, and clears the deadline, so the stream is usable afterwards and no
// goroutine outlives the call.
func begin(ctx context.Context, rw io.ReadWriter) (*session, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("starting handshake: %w", err)
	}
	s := &session{ctx: ctx, rw: rw}
	d, ok := rw.(deadliner)
	if !ok {
		return s, func() {}, nil // ctx is checked before each step instead
	}
	dl, hasDeadline := ctx.Deadline()
	if !hasDeadline && ctx.Done() == nil {
		return s, func() {}, nil // nothing can end this context
	}
	if err := d.SetDeadline(dl); err != nil { // zero dl: no deadline
		return nil, nil, fmt.Errorf("setting the handshake deadline: %w", err)
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-ctx.Done():
			_ = d.SetDeadline(aLongTimeAgo) // an error here means rw is closed: I/O fails anyway
		case <-done:
		}
	}()
	stop := func() {
		close(done)
		<-exited // the watcher must not set a past deadline after the reset
		_ = d.SetDeadline(time.Time{})
	}
	return s, stop, nil
}

// read reads one frame, checking ctx first.
func (s *session) read(what string) ([]byte, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	msg, err := ReadFrame(s.rw)
	if err != nil {
		return nil, s.ioError(what, err)
	}
	return msg, nil
}

// write writes one frame, checking ctx first.
func (s *session) write(what string, msg []byte) error {
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := WriteFrame(s.rw, msg); err != nil {
		return s.ioError(what, err)
	}
	return nil
}

// ioError attributes an I/O failure: to the context if it has ended (the
// watcher or the deadline we set caused it), to the peer closing the stream
// if it ended between frames, else to the error itself.
func (s *session) ioError(what string, err error) error {
	if ctxErr := s.ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	// The stream's deadline timer can fire just before the context's.
	if dl, ok := s.ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(dl) {
		return fmt.Errorf("%s: %w", what, context.DeadlineExceeded)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w (%w)", what, ErrHandshakeClosed, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
