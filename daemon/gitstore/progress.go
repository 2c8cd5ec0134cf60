package gitstore

import (
	"regexp"
	"strconv"
	"strings"
)

// Limits of what is kept of git's stderr.
const (
	maxStderrLine  = 512 // bytes kept of one line
	maxStderrLines = 16  // lines kept (the last ones)
)

// progressRE matches git's progress lines: "Counting objects:  11% (1/9)",
// "Receiving objects: 100% (9/9), 6.86 KiB | …, done." or
// "Enumerating objects: 9, done.".
var progressRE = regexp.MustCompile(`^([A-Z][A-Za-z ]*?): +(?:\d+% \((\d+)/(\d+)\)|(\d+))(?:,|$)`)

// stderrSink receives git's stderr: progress lines go to the callback, the
// last other lines are kept for error messages. Lines end at '\n' or '\r'.
// Only exec's copying goroutine writes; it is read after Wait.
type stderrSink struct {
	progress func(stage string, done, total int)
	partial  []byte
	lines    []string
}

func (s *stderrSink) Write(p []byte) (int, error) {
	for _, c := range p {
		switch {
		case c == '\n' || c == '\r':
			s.endLine()
		case len(s.partial) < maxStderrLine:
			s.partial = append(s.partial, c)
		}
	}
	return len(p), nil
}

func (s *stderrSink) flush() { s.endLine() }

func (s *stderrSink) endLine() {
	line := strings.TrimSpace(string(s.partial))
	s.partial = s.partial[:0]
	if line == "" {
		return
	}
	if m := progressRE.FindStringSubmatch(line); m != nil {
		if s.progress != nil {
			var done, total int
			if m[4] != "" {
				done, _ = strconv.Atoi(m[4])
			} else {
				done, _ = strconv.Atoi(m[2])
				total, _ = strconv.Atoi(m[3])
			}
			s.progress(m[1], done, total)
		}
		return
	}
	if strings.HasPrefix(line, "hint:") {
		return
	}
	s.lines = append(s.lines, line)
	if len(s.lines) > maxStderrLines {
		s.lines = s.lines[len(s.lines)-maxStderrLines:]
	}
}

// tail returns the kept lines, joined by newlines.
func (s *stderrSink) tail() string { return strings.Join(s.lines, "\n") }
