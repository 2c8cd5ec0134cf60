package rpc

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"
)

func progressHandler(ctx context.Context, svc Service, c *call) (any, error) {
	for i := range int64(50) {
		if err := c.Progress(i+1, 50, "step "+strconv.FormatInt(i+1, 10)); err != nil {
			return nil, err
		}
	}
	return "done", nil
}

// Progress notifications reach the caller's onNotify, in order, before the
// answer, with the call's id as token.
func TestProgressNotifications(t *testing.T) {
	ts := startServer(t, newFake(), func(s *Server) {
		s.methods["test.progress"] = method{MethodInfo{Name: "test.progress"}, progressHandler}
	})
	c := ts.client(t)
	var mu sync.Mutex
	var seen []Progress
	var result string
	err := c.Call(ctxT(t), "test.progress", nil, &result, func(method string, params json.RawMessage) {
		if method != NotifyProgress {
			t.Errorf("notification %s", method)
		}
		var p Progress
		if err := json.Unmarshal(params, &p); err != nil {
			t.Error(err)
		}
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	})
	if err != nil || result != "done" {
		t.Fatalf("result %q, %v", result, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 50 {
		t.Fatalf("got %d progress notifications before the answer, want 50", len(seen))
	}
	for i, p := range seen {
		if p.Done != int64(i+1) || p.Total != 50 || string(p.Token) != "1" {
			t.Fatalf("progress %d: %+v (token %s)", i, p, p.Token)
		}
	}
}

// Over the wire, a long call's progress notifications carry its id and come
// before its answer.
func TestRepoProgressBeforeAnswerRaw(t *testing.T) {
	ts := startServer(t, newFake())
	rc := ts.raw(t)
	for _, tc := range []struct{ id, req string }{
		{`"s1"`, `{"jsonrpc":"2.0","id":"s1","method":"repo.sync","params":{"repo_id":"` + repoExample + `"}}`},
		{`21`, `{"jsonrpc":"2.0","id":21,"method":"repo.clone","params":{"repo_id":"` + repoExample + `","path":"` + pathHello + `"}}`},
		{`22`, `{"jsonrpc":"2.0","id":22,"method":"repo.pull","params":{"path":"` + pathHello + `"}}`},
	} {
		rc.send(tc.req + "\n")
		notes := 0
		for {
			r := decodeResponse(t, rc.line())
			if r.Method == "" {
				if string(r.ID) != tc.id || r.Error != nil {
					t.Fatalf("answer %+v, want a result for id %s", r, tc.id)
				}
				break
			}
			if r.Method != NotifyProgress || r.ID != nil {
				t.Fatalf("unexpected message %+v", r)
			}
			var p Progress
			if err := json.Unmarshal(r.Params, &p); err != nil || string(p.Token) != tc.id {
				t.Fatalf("progress %s (%v): want token %s", r.Params, err, tc.id)
			}
			notes++
		}
		if notes == 0 {
			t.Errorf("%s: no progress before the answer", tc.req)
		}
	}
}

// A burst of updates is coalesced: the first goes out at once, the last
// before the answer, nothing in between while the interval runs.
func TestRepoProgressThrottled(t *testing.T) {
	f := newFake()
	f.syncHook = func(ctx context.Context, p RepoIDParams, progress ProgressFunc) (SyncResult, error) {
		for i := range int64(2000) {
			progress(i+1, 2000, "receiving objects")
		}
		return SyncResult{RepoID: p.RepoID}, nil
	}
	ts := startServer(t, f, func(s *Server) { s.progressInterval = time.Hour })
	c := ts.client(t)
	var got []Progress
	if _, err := c.RepoSync(ctxT(t), repoExample, func(p Progress) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Done != 1 || got[1].Done != 2000 || got[1].Total != 2000 {
		t.Fatalf("progress %+v, want the first and the last update", got)
	}
}

// An update held back by the throttle goes out when the interval is over,
// while the call still runs.
func TestRepoProgressPendingSentByTimer(t *testing.T) {
	f := newFake()
	arrived := make(chan Progress, 16)
	f.syncHook = func(ctx context.Context, p RepoIDParams, progress ProgressFunc) (SyncResult, error) {
		progress(1, 3, "one")
		progress(2, 3, "two") // held back, then sent by the timer
		for {
			select {
			case pr := <-arrived:
				if pr.Done == 2 {
					return SyncResult{RepoID: p.RepoID}, nil
				}
			case <-ctx.Done():
				return SyncResult{}, ctx.Err()
			}
		}
	}
	ts := startServer(t, f, func(s *Server) { s.progressInterval = 20 * time.Millisecond })
	c := ts.client(t)
	if _, err := c.RepoSync(ctxT(t), repoExample, func(p Progress) { arrived <- p }); err != nil {
		t.Fatal(err)
	}
}

// A Service that keeps the ProgressFunc and calls it after returning sends
// nothing: no notification follows the answer.
func TestRepoProgressAfterReturnDropped(t *testing.T) {
	f := newFake()
	var mu sync.Mutex
	var kept ProgressFunc
	f.syncHook = func(ctx context.Context, p RepoIDParams, progress ProgressFunc) (SyncResult, error) {
		mu.Lock()
		kept = progress
		mu.Unlock()
		return SyncResult{RepoID: p.RepoID}, nil
	}
	ts := startServer(t, f)
	rc := ts.raw(t)
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"repo.sync","params":{"repo_id":"` + repoExample + `"}}` + "\n")
	if r := decodeResponse(t, rc.line()); string(r.ID) != "1" || r.Error != nil {
		t.Fatalf("answer %+v", r)
	}
	mu.Lock()
	kept(5, 10, "late")
	mu.Unlock()
	rc.send(`{"jsonrpc":"2.0","id":2,"method":"node.info"}` + "\n")
	if r := decodeResponse(t, rc.line()); string(r.ID) != "2" || r.Method != "" {
		t.Fatalf("got %+v, want the answer to id 2 and nothing before it", r)
	}
}
