package users

import (
	"context"
	"time"
)

// defaultPruneBatch is the most audit rows one DELETE removes, so a first prune of a large
// table does not hold one long transaction.
const defaultPruneBatch = 10000

// PruneAudit deletes audit events older than before, in batches, and returns how many rows it
// removed. It stops early, returning what it removed so far and the error, when ctx ends or a
// batch fails; calling it again continues. Several instances may prune at once.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	q := s.rebind(`DELETE FROM audit_events WHERE id IN
		(SELECT id FROM audit_events WHERE time < ? ORDER BY time LIMIT ?)`)
	var total int64
	for {
		n, err := s.pruneOnce(ctx, q, before.UTC())
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(s.pruneBatch) {
			return total, nil
		}
	}
}

func (s *Store) pruneOnce(ctx context.Context, q string, before time.Time) (int64, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	res, err := s.db.ExecContext(ctx, q, before, s.pruneBatch)
	if err != nil {
		return 0, wrapErr("prune audit events", err)
	}
	return res.RowsAffected()
}

// retention deletes audit events older than keep every interval until stop is closed.
type retention struct {
	keep, every time.Duration
	stop, done  chan struct{}
}

func (s *Store) startRetention(keep, every time.Duration) {
	if keep <= 0 {
		return
	}
	s.retention = &retention{keep: keep, every: every, stop: make(chan struct{}), done: make(chan struct{})}
	go s.runRetention(s.retention)
}

func (s *Store) runRetention(r *retention) {
	defer close(r.done)
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-r.stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		n, err := s.PruneAudit(ctx, s.clock().Add(-r.keep))
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("users: pruning audit events", "err", err, "removed", n)
		case n > 0:
			s.log.Info("users: pruned audit events", "removed", n, "older_than", r.keep.String())
		}
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

func (r *retention) close() {
	if r != nil {
		close(r.stop)
		<-r.done
	}
}
