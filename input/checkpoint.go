package input

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// checkpointVersion is written into every checkpoint so that a later format
// can tell old state apart instead of misreading it.
const checkpointVersion = 1

// contentCheckpoint is the stored state of one tenant × content type.
type contentCheckpoint struct {
	Version       int                  `json:"version"`
	ListedThrough time.Time            `json:"listed_through"`
	Delivered     map[string]time.Time `json:"delivered"`
	Pending       []pendingCheckpoint  `json:"pending"`
}

// pendingCheckpoint is a blob listed but not fully acknowledged: enough to
// fetch it again without listing, and to skip what was acknowledged.
type pendingCheckpoint struct {
	ContentID         string    `json:"content_id"`
	ContentURI        string    `json:"content_uri"`
	ContentCreated    time.Time `json:"content_created"`
	ContentExpiration time.Time `json:"content_expiration"`
	AckedRecords      int       `json:"acked_records"`
}

// checkpointKey names the state of one content type in the cache. The tenant
// is part of it so that several inputs can share one cache resource.
func checkpointKey(tenantID, contentType string) string {
	return "office365_activity/" + tenantID + "/" + contentType
}

// checkpointStore reads and writes checkpoints through a Benthos cache.
type checkpointStore interface {
	load(ctx context.Context, key string) (contentCheckpoint, bool, error)
	save(ctx context.Context, key string, cp contentCheckpoint) error
}

// cacheCheckpointStore stores checkpoints in a named cache resource.
type cacheCheckpointStore struct {
	res       *service.Resources
	cacheName string
}

func (s cacheCheckpointStore) load(ctx context.Context, key string) (contentCheckpoint, bool, error) {
	var (
		raw    []byte
		getErr error
	)
	if err := s.res.AccessCache(ctx, s.cacheName, func(c service.Cache) {
		raw, getErr = c.Get(ctx, key)
	}); err != nil {
		return contentCheckpoint{}, false, fmt.Errorf("accessing checkpoint cache %q: %w", s.cacheName, err)
	}
	if errors.Is(getErr, service.ErrKeyNotFound) {
		return contentCheckpoint{}, false, nil
	}
	if getErr != nil {
		return contentCheckpoint{}, false, fmt.Errorf("reading checkpoint %q from cache %q: %w", key, s.cacheName, getErr)
	}
	var cp contentCheckpoint
	if err := json.Unmarshal(raw, &cp); err != nil {
		return contentCheckpoint{}, false, fmt.Errorf("decoding checkpoint %q from cache %q: %w", key, s.cacheName, err)
	}
	if cp.Version != checkpointVersion {
		return contentCheckpoint{}, false, fmt.Errorf("checkpoint %q in cache %q has version %d, this build reads version %d", key, s.cacheName, cp.Version, checkpointVersion)
	}
	return cp, true, nil
}

func (s cacheCheckpointStore) save(ctx context.Context, key string, cp contentCheckpoint) error {
	raw, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encoding checkpoint %q: %w", key, err)
	}
	var setErr error
	if err := s.res.AccessCache(ctx, s.cacheName, func(c service.Cache) {
		setErr = c.Set(ctx, key, raw, nil)
	}); err != nil {
		return fmt.Errorf("accessing checkpoint cache %q: %w", s.cacheName, err)
	}
	if setErr != nil {
		return fmt.Errorf("writing checkpoint %q to cache %q: %w", key, s.cacheName, setErr)
	}
	return nil
}

// committer writes checkpoints with group commit: an ack waits for the next
// write that includes its state and gets that write's error, while acks that
// arrive during a write share the following one. Checkpoint failures therefore
// reach the ack (and so the pipeline) without one write per ack.
type committer struct {
	store    checkpointStore
	tenantID string
	cursors  map[string]*contentCursor
	onWrite  func(err error)

	mu      sync.Mutex
	dirty   map[string]bool
	waiters map[string][]chan error
	kick    chan struct{}
	done    chan struct{} // closed once run has written for the last time
}

func newCommitter(store checkpointStore, tenantID string, cursors map[string]*contentCursor, onWrite func(error)) *committer {
	return &committer{
		store:    store,
		tenantID: tenantID,
		cursors:  cursors,
		onWrite:  onWrite,
		dirty:    map[string]bool{},
		waiters:  map[string][]chan error{},
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

// commit waits until the state of contentType is durably stored.
func (c *committer) commit(ctx context.Context, contentType string) error {
	done := make(chan error, 1)
	c.mu.Lock()
	c.dirty[contentType] = true
	c.waiters[contentType] = append(c.waiters[contentType], done)
	c.mu.Unlock()
	c.wake()
	select {
	case err := <-done:
		return err
	case <-c.done:
		return errors.New("checkpoint not written: the input has closed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// schedule asks for contentType's state to be stored soon, without waiting.
func (c *committer) schedule(contentType string) {
	c.mu.Lock()
	c.dirty[contentType] = true
	c.mu.Unlock()
	c.wake()
}

func (c *committer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run writes dirty checkpoints until ctx ends, then writes once more so that
// state acknowledged during shutdown is not lost.
func (c *committer) run(ctx context.Context) {
	for {
		select {
		case <-c.kick:
			c.flush(ctx)
		case <-ctx.Done():
			c.flush(context.Background())
			close(c.done)
			return
		}
	}
}

func (c *committer) flush(ctx context.Context) {
	c.mu.Lock()
	dirty, waiters := c.dirty, c.waiters
	c.dirty, c.waiters = map[string]bool{}, map[string][]chan error{}
	c.mu.Unlock()
	for contentType := range dirty {
		cp := c.cursors[contentType].snapshot()
		err := c.store.save(ctx, checkpointKey(c.tenantID, contentType), cp)
		if c.onWrite != nil {
			c.onWrite(err)
		}
		if err != nil {
			// Keep it dirty: the next flush tries again.
			c.mu.Lock()
			c.dirty[contentType] = true
			c.mu.Unlock()
		}
		for _, w := range waiters[contentType] {
			w <- err
		}
	}
}
