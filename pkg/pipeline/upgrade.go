package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// legacyIndexStream is where builds before the index stream kept the board
// index: the key-value bucket pulljobs_boards, a key a job
// (<board>.r.<reference token> or <board>.k.<job key>), each a boardEntry
// in the format the journal uses.
const (
	legacyIndexStream  = "KV_pulljobs_boards"
	legacyIndexSubject = "$KV.pulljobs_boards."
)

// adopt carries what an earlier build's index knew of a board into the
// board's journal, so that the first refresh on this build keeps what
// pulljobs wrote: without it every job would look changed once, and with
// update_content the run would replace the whole board, a day of the
// default quota for a nationwide one. The refresh calls it for a board
// without a snapshot, before it spills the listing: what the listing says
// of where each job stands comes later in the stream, so it has the last
// word. It returns whether the earlier index held anything of the board;
// dropLegacy removes it once the new snapshot is committed. Adopting twice
// (a refresh that failed after adopt) journals the same entries again,
// after what pushers wrote meanwhile: at worst a job looks changed once
// more, and is written once more.
func (x boardIndex) adopt(ctx context.Context, board string) (bool, error) {
	legacy, err := x.l.js.Stream(ctx, legacyIndexStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the earlier board index of %s: %w", board, err)
	}
	b := batch{x: x}
	found := false
	err = readStream(ctx, legacy, []string{legacyIndexSubject + board + ".>"}, false, func(m jetstream.Msg) error {
		found = true
		var e boardEntry
		if len(m.Data()) == 0 || m.Headers().Get(kvOperation) != "" || json.Unmarshal(m.Data(), &e) != nil || e.id() == "" {
			return nil // a deleted key, or an entry this build cannot read: the job is written once more
		}
		e.Run, e.Action = "", ""
		return b.add(ctx, indexSubject(board, "log."+hexDigit(hashID(e.id()))), e)
	})
	if err == nil {
		err = b.flush(ctx)
	}
	if err != nil {
		return found, fmt.Errorf("adopt the earlier board index of %s: %w", board, err)
	}
	return found, nil
}

// kvOperation is the header of a key-value bucket's delete and purge
// markers.
const kvOperation = "KV-Operation"

// dropLegacy removes the board's entries from the earlier build's index,
// and that index once it holds no other board's. It is best effort: what
// is left is never read again, since the board now has a snapshot.
func (x boardIndex) dropLegacy(ctx context.Context, board string) {
	legacy, err := x.l.js.Stream(ctx, legacyIndexStream)
	if err != nil {
		return
	}
	if err := legacy.Purge(ctx, jetstream.WithPurgeSubject(legacyIndexSubject+board+".>")); err != nil {
		return
	}
	if si, err := legacy.Info(ctx); err == nil && si.State.Msgs == 0 {
		_ = x.l.js.DeleteStream(ctx, legacyIndexStream)
	}
}
