package replica

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/megaengine/megaengine/internal/testutil"
	"github.com/megaengine/megaengine/protocol/wire"
)

// A pack streams into index-pack as it arrives: with the transfer held
// halfway (the server has sent less than half of a 24 MiB pack), half of
// it is already in index-pack's file on disk. A client that buffered the
// whole pack before indexing it (in memory or in a temporary copy) would
// have written nothing there yet.
func TestFetchStreamsIntoIndexPack(t *testing.T) {
	const size = 24 << 20
	owner, client, repo, pn := pair(t, size, nil)
	const hold = size / 2 / wire.MaxPackChunk // pack frames let through before the hold
	held, release := make(chan struct{}), make(chan struct{})
	pn.tamper = func(i int, typ byte, payload []byte) (byte, []byte, bool) {
		if typ == wire.FramePack && i == hold {
			close(held)
			<-release
		}
		return typ, payload, true
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := client.FetchFrom(ctx, owner.key.ID(), repo, nil)
		done <- err
	}()
	<-held
	const want = hold * wire.MaxPackChunk * 9 / 10
	testutil.WaitForState(t, "index-pack to have half the pack on disk", 20*time.Second, func() (bool, string) {
		files, _ := filepath.Glob(filepath.Join(client.Dir(repo), "objects", "incoming-*", "incoming.pack"))
		var n int64
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				n += fi.Size()
			}
		}
		return n >= want, "bytes on disk " + strconv.FormatInt(n, 10)
	})
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
