package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/megaengine/megaengine/rpc"
)

// progressWidth is the widest progress line drawn: it must fit a terminal
// of 80 columns, or the carriage return no longer redraws it in place.
const progressWidth = 79

// progressLine draws the progress of a long call on one line of a terminal,
// redrawn in place ("\r"), and erases it when the call ends. A nil
// *progressLine draws nothing: that is what a command gets when stderr is
// not a terminal, so redirected output carries no progress noise.
type progressLine struct {
	mu    sync.Mutex
	w     io.Writer
	drawn int // runes on the line now

	phase string    // the message of the phase being drawn
	since time.Time // when that phase began, for its rate
}

// newProgress returns a progress line on e's stderr if it is a terminal,
// else nil.
func newProgress(e *env) *progressLine {
	if !isTerminal(e.stderr) {
		return nil
	}
	return &progressLine{w: e.stderr}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update redraws the line for p. It runs on the rpc client's read
// goroutine and only writes to the terminal.
func (l *progressLine) update(p rpc.Progress) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.Message != l.phase || l.since.IsZero() {
		l.phase, l.since = p.Message, time.Now()
	}
	line := progressText(p, time.Since(l.since))
	n := utf8.RuneCountInString(line)
	pad := max(l.drawn-n, 0) // cover what a longer line left
	fmt.Fprintf(l.w, "\r%s%s", line, strings.Repeat(" ", pad))
	l.drawn = n + pad
}

// clear erases the line, leaving the cursor at its start.
func (l *progressLine) clear() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drawn > 0 {
		fmt.Fprintf(l.w, "\r%s\r", strings.Repeat(" ", l.drawn))
		l.drawn = 0
	}
}

// progressText is one progress report as a line of at most progressWidth
// runes: "receiving objects: 45% (5684/12629)" with a total, else the
// bytes done and their rate over elapsed, the time the phase has run:
// "receiving objects: 12.3 MiB, 41.0 MiB/s".
func progressText(p rpc.Progress, elapsed time.Duration) string {
	var count string
	switch {
	case p.Total > 0:
		pct := min(max(p.Done*100/p.Total, 0), 100)
		count = fmt.Sprintf("%3d%% (%d/%d)", pct, p.Done, p.Total)
	case p.Done > 0:
		count = byteSize(p.Done)
		if elapsed >= 200*time.Millisecond {
			count += ", " + byteSize(int64(float64(p.Done)/elapsed.Seconds())) + "/s"
		}
	}
	msg := longDID.ReplaceAllStringFunc(printable(strings.ReplaceAll(p.Message, "\n", " ")), shortDID)
	if msg == "" {
		msg = "working"
	}
	if count == "" {
		return truncate(msg, progressWidth)
	}
	room := progressWidth - utf8.RuneCountInString(count) - 2
	return truncate(msg, max(room, 10)) + ": " + count
}

// byteSize is n bytes with a binary unit: "512 B", "3.4 KiB", "12.3 MiB".
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// longDID matches the node ids a progress message may name: on a line of
// 79 columns they are shown by their last 8 characters.
var longDID = regexp.MustCompile(`did:key:z[1-9A-HJ-NP-Za-km-z]{40,}`)

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// printable replaces control characters (a terminal escape sequence in a
// repository's name, say) with U+FFFD; newline and tab are kept.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return utf8.RuneError
		}
		return r
	}, s)
}
