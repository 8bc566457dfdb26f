package input

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/o365connect/o365connect/input/o365api"
)

// office365ActivityInput collects one tenant. Listers (one per content type)
// find blobs and queue them; fetchers (max_concurrent_fetches of them) stream
// each blob into bounded batches; ReadBatch hands the batches to Benthos, and
// each batch's ack moves that content type's cursor.
type office365ActivityInput struct {
	cfg     office365ActivityConfig
	log     *service.Logger
	store   checkpointStore
	metrics *inputMetrics
	now     func() time.Time

	// newClient builds the API client at Connect; tests replace it.
	newClient func(cfg office365ActivityConfig, observe func(o365api.RequestEvent)) (*o365api.Client, error)

	throttleMu sync.Mutex
	throttled  bool // whether the last API answer was a throttle, for observeRequest

	clock apiClock // the API's clock, from its Date headers

	// dedupe is nil when deduplication is off.
	dedupe *deduper

	mu        sync.Mutex
	running   bool
	client    *o365api.Client
	subs      *subscriptionKeeper
	cursors   map[string]*contentCursor
	committer *committer
	jobs      chan fetchJob
	batches   chan emittedBatch
	stop      context.CancelFunc
	workers   sync.WaitGroup
	commitEnd sync.WaitGroup
}

// fetchJob asks for records [from, to) of a blob; to < 0 means to its end.
type fetchJob struct {
	item     o365api.ContentItem
	from, to int
	attempt  int
}

type emittedBatch struct {
	batch service.MessageBatch
	ack   service.AckFunc
}

func newOffice365ActivityInput(cfg office365ActivityConfig, mgr *service.Resources) (*office365ActivityInput, error) {
	in := &office365ActivityInput{
		cfg:       cfg,
		log:       mgr.Logger(),
		store:     cacheCheckpointStore{res: mgr, cacheName: cfg.CheckpointCache},
		metrics:   newInputMetrics(mgr.Metrics(), cfg.TenantID),
		now:       time.Now,
		newClient: newAPIClient,
	}
	if cfg.Dedupe {
		in.dedupe = newDeduper(cfg.DedupeMaxEntries)
	}
	return in, nil
}

// newAPIClient builds the MSAL token source and the API client, sharing one
// HTTP client (and so one TLS configuration) between the two hosts.
func newAPIClient(cfg office365ActivityConfig, observe func(o365api.RequestEvent)) (*o365api.Client, error) {
	client, _, err := newAPIClientAndTokens(cfg, observe)
	return client, err
}

// newAPIClientAndTokens is newAPIClient that also returns the token source,
// for the operator commands that inspect the token itself.
func newAPIClientAndTokens(cfg office365ActivityConfig, observe func(o365api.RequestEvent)) (*o365api.Client, o365api.TokenSource, error) {
	httpClient := cfg.httpClient()
	tokens, err := o365api.NewMSALTokenSource(o365api.MSALConfig{
		TenantID:                 cfg.TenantID,
		ClientID:                 cfg.ClientID,
		LoginURL:                 cfg.Endpoints.LoginURL,
		Scope:                    cfg.Endpoints.Scope(),
		ClientSecret:             cfg.ClientSecret,
		CertificatePEM:           cfg.CertificatePEM,
		HTTPClient:               httpClient,
		DisableInstanceDiscovery: cfg.CustomLoginURL,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating token source: %w", err)
	}
	client, err := o365api.New(o365api.Config{
		TenantID:          cfg.TenantID,
		PublisherID:       cfg.PublisherID,
		APIURL:            cfg.Endpoints.APIURL,
		HTTPClient:        httpClient,
		Tokens:            tokens,
		RequestsPerMinute: cfg.MaxRequestsPerMinute,
		Observe:           observe,
	})
	return client, tokens, err
}

// Connect checks credentials and subscriptions, loads the checkpoints and
// starts collecting. Benthos calls it again (with back-off) when it fails.
func (in *office365ActivityInput) Connect(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.running {
		return nil
	}
	if in.cfg.TLS != nil && in.cfg.TLS.InsecureSkipVerify {
		in.log.Warnf("TLS certificate verification is off (tls.skip_cert_verify: true): the client secret and the bearer token go to whichever server answers for %s and %s", in.cfg.Endpoints.LoginURL, in.cfg.Endpoints.APIURL)
	}
	client, err := in.newClient(in.cfg, in.observeRequest)
	if err != nil {
		return err
	}
	subs := newSubscriptionKeeper(client, in.cfg.StartSubscriptions, in.log, in.now)
	subs.cooldown = subscriptionRestartCooldown
	if err := subs.ensure(ctx, in.cfg.ContentTypes); err != nil {
		return err
	}

	cursors := make(map[string]*contentCursor, len(in.cfg.ContentTypes))
	restored := make(map[string][]fetchJob, len(in.cfg.ContentTypes))
	for _, ct := range in.cfg.ContentTypes {
		cur := newContentCursor(ct, in.cfg.Lookback)
		cp, found, err := in.store.load(ctx, checkpointKey(in.cfg.TenantID, ct))
		if err != nil {
			return err
		}
		if found {
			restored[ct] = cur.restore(cp)
			in.log.Infof("Resuming %s from checkpoint: listed through %s, %d blobs pending", ct, cp.ListedThrough.Format(time.RFC3339), len(cp.Pending))
		}
		cursors[ct] = cur
	}

	runCtx, stop := context.WithCancel(context.Background())
	in.client, in.subs, in.cursors, in.stop = client, subs, cursors, stop
	in.committer = newCommitter(in.store, in.cfg.TenantID, cursors, in.metrics.checkpointWritten)
	in.jobs = make(chan fetchJob, 2*in.cfg.MaxConcurrentFetches)
	in.batches = make(chan emittedBatch)

	in.commitEnd.Add(1)
	go func() {
		defer in.commitEnd.Done()
		in.committer.run(runCtx)
	}()
	for _, ct := range in.cfg.ContentTypes {
		in.workers.Add(1)
		go func() {
			defer in.workers.Done()
			in.runLister(runCtx, ct, restored[ct])
		}()
	}
	for range in.cfg.MaxConcurrentFetches {
		in.workers.Add(1)
		go func() {
			defer in.workers.Done()
			in.runFetcher(runCtx)
		}()
	}
	in.running = true
	return nil
}

// ReadBatch returns the next batch of records: one blob, or one bounded slice
// of a large blob.
func (in *office365ActivityInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	in.mu.Lock()
	batches, running := in.batches, in.running
	in.mu.Unlock()
	if !running {
		return nil, nil, service.ErrNotConnected
	}
	select {
	case b := <-batches:
		return b.batch, b.ack, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// Close stops listing and fetching, then writes the checkpoints a last time.
// Benthos calls it only once every pending ack has resolved, so that last
// write includes all acknowledged work.
func (in *office365ActivityInput) Close(ctx context.Context) error {
	in.mu.Lock()
	stop, running := in.stop, in.running
	in.running = false
	in.mu.Unlock()
	if !running {
		return nil
	}
	stop()
	done := make(chan struct{})
	go func() {
		in.workers.Wait()
		in.commitEnd.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runLister polls one content type until ctx ends.
func (in *office365ActivityInput) runLister(ctx context.Context, contentType string, restored []fetchJob) {
	for _, job := range restored {
		if !in.enqueue(ctx, job) {
			return
		}
	}
	firstRunStart := in.apiNow().Add(-in.cfg.Backfill)
	var lastErr string
	for {
		err := in.poll(ctx, contentType, firstRunStart)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && err.Error() != lastErr:
			in.log.Errorf("Listing %s failed, retrying every %v: %v", contentType, in.cfg.PollInterval, err)
			lastErr = err.Error()
		case err != nil:
			in.log.Debugf("Listing %s failed again: %v", contentType, err)
		case lastErr != "":
			in.log.Infof("Listing %s recovered", contentType)
			lastErr = ""
		}
		in.metrics.pollDone(contentType, in.cursors[contentType], in.apiNow(), err == nil)
		select {
		case <-time.After(in.cfg.PollInterval):
		case <-ctx.Done():
			return
		}
	}
}

// poll lists from the cursor up to now, window by window, queueing every
// blob not yet delivered. A window counts as listed only once all its pages
// were read and all its blobs queued. "Now" is the API's clock: a window
// that ends in the API's future would be recorded as listed before its
// content exists.
func (in *office365ActivityInput) poll(ctx context.Context, contentType string, firstRunStart time.Time) error {
	cur := in.cursors[contentType]
	now := in.apiNow()
	oldest := oldestListable(now)
	if listed := cur.listedThroughTime(); !listed.IsZero() && listed.Before(oldest) {
		// Downtime longer than the API's retention: say once, loudly, which
		// range can no longer be collected, then carry on from the oldest
		// listable time.
		in.log.Errorf("Content of %s created between %s and %s is past the API's 7-day retention and cannot be collected", contentType, listed.Format(time.RFC3339), oldest.Format(time.RFC3339))
		in.metrics.lostRange(contentType, oldest.Sub(listed))
		cur.markListed(oldest)
	}
	if firstRunStart.Before(oldest) {
		firstRunStart = oldest
	}
	for _, w := range planWindows(cur.listFrom(firstRunStart), now) {
		err := in.listWindow(ctx, cur, w)
		for relists := 1; err != nil && relists <= maxRelists && isStaleNextPage(err); relists++ {
			// A stale nextPage token cannot be followed again; the window
			// is listed again from its first page, and blobs already
			// admitted are skipped by contentId.
			in.log.Debugf("Listing %s from %s: the next page went stale, listing the window again (%d of %d): %v", contentType, w.start.Format(time.RFC3339), relists, maxRelists, err)
			err = in.listWindow(ctx, cur, w)
		}
		if err != nil {
			in.subs.handle(ctx, contentType, err)
			return fmt.Errorf("listing %s from %s to %s: %w", contentType, w.start.Format(time.RFC3339), w.end.Format(time.RFC3339), err)
		}
		cur.markListed(w.end)
		in.committer.schedule(contentType)
	}
	return nil
}

// maxRelists bounds how often one poll lists a window again after stale
// next pages; past it the poll fails and the next one starts over.
const maxRelists = 3

func (in *office365ActivityInput) listWindow(ctx context.Context, cur *contentCursor, w listWindow) error {
	return in.client.ListContent(ctx, cur.contentType, w.start, w.end, func(items []o365api.ContentItem) error {
		for _, item := range items {
			if !cur.admit(item) {
				continue
			}
			if !in.enqueue(ctx, fetchJob{item: item, to: -1}) {
				return ctx.Err()
			}
		}
		return nil
	})
}

func isStaleNextPage(err error) bool {
	var apiErr *o365api.APIError
	return errors.As(err, &apiErr) && apiErr.Action() == o365api.ActionRelistWindow
}

func (in *office365ActivityInput) enqueue(ctx context.Context, job fetchJob) bool {
	select {
	case in.jobs <- job:
		return true
	case <-ctx.Done():
		return false
	}
}

// enqueueAfter queues job again after delay, without holding up the caller.
func (in *office365ActivityInput) enqueueAfter(ctx context.Context, job fetchJob, delay time.Duration) {
	in.workers.Add(1)
	go func() {
		defer in.workers.Done()
		select {
		case <-time.After(delay):
			in.enqueue(ctx, job)
		case <-ctx.Done():
		}
	}()
}

func (in *office365ActivityInput) runFetcher(ctx context.Context) {
	for {
		select {
		case job := <-in.jobs:
			in.fetch(ctx, job)
		case <-ctx.Done():
			return
		}
	}
}

// fetch streams one job's records into batches. A failure part-way resumes
// from the first record not yet emitted, so records are neither skipped nor
// emitted twice by the retry. A blob that cannot be fetched safely (foreign
// host) or decoded (after blob_attempts) goes to the dead-letter path.
func (in *office365ActivityInput) fetch(ctx context.Context, job fetchJob) {
	ct, id := job.item.ContentType, job.item.ContentID
	cur := in.cursors[ct]
	var body *cappedBuffer
	if in.cfg.DeadLetter && job.attempt+1 >= in.cfg.BlobAttempts {
		// The last attempt keeps what it reads, for the dead-letter message.
		body = &cappedBuffer{max: in.cfg.DeadLetterMaxBytes}
	}
	next, total, err := in.streamBlob(ctx, job, body)
	if err == nil {
		if total >= 0 && cur.finishFetch(id, total) {
			in.metrics.blob(ct, "delivered")
			in.committer.schedule(ct)
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	var apiErr *o365api.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.Action() {
		case o365api.ActionSkipContent:
			in.log.Warnf("Skipping blob %s of %s (created %s): the API no longer serves it: %v", id, ct, job.item.ContentCreated.Format(time.RFC3339), err)
			cur.drop(id)
			in.metrics.blob(ct, "skipped_gone")
			in.committer.schedule(ct)
			return
		case o365api.ActionResubscribe:
			in.subs.handle(ctx, ct, err)
		}
	}
	job.from = next
	job.attempt++
	if in.cfg.DeadLetter {
		var bodyErr *blobBodyError
		if errors.Is(err, o365api.ErrForeignHost) || (errors.As(err, &bodyErr) && job.attempt >= in.cfg.BlobAttempts) {
			in.deadLetter(ctx, job, body, err)
			return
		}
	}
	delay := backoffDelay(job.attempt)
	if job.attempt >= in.cfg.BlobAttempts {
		in.log.Errorf("Fetching blob %s of %s failed %d times, setting it aside until the next poll (it stays in the checkpoint): %v", id, ct, job.attempt, err)
		in.metrics.blob(ct, "failed")
		job.attempt, delay = 0, in.cfg.PollInterval
	} else {
		in.log.Debugf("Fetching blob %s of %s failed (attempt %d), retrying from record %d: %v", id, ct, job.attempt, job.from, err)
		in.metrics.blob(ct, "refetched")
	}
	in.enqueueAfter(ctx, job, delay)
}

// blobBodyError is a failure reading a blob the API served (200): truncated
// or malformed. Fetching again may help; if it keeps failing, the blob is a
// dead letter rather than a reason to stall.
type blobBodyError struct{ err error }

func (e *blobBodyError) Error() string { return e.err.Error() }
func (e *blobBodyError) Unwrap() error { return e.err }

// streamBlob emits records [job.from, job.to) of a blob in bounded batches.
// It returns the index after the last record emitted (or acknowledged as a
// duplicate), and the blob's record count when it read the blob to its end
// (-1 otherwise). When body is not nil it keeps a bounded copy of the bytes read.
func (in *office365ActivityInput) streamBlob(ctx context.Context, job fetchJob, body *cappedBuffer) (next, total int, err error) {
	next, total = job.from, -1
	stream, err := in.client.FetchBlob(ctx, job.item.ContentURI)
	if err != nil {
		return next, total, fmt.Errorf("fetching blob %s: %w", job.item.ContentID, err)
	}
	defer stream.Close()
	var r io.Reader = stream
	if body != nil {
		r = io.TeeReader(stream, body)
	}

	decoder := o365api.NewRecordDecoder(r)
	var (
		batch      service.MessageBatch
		keys       []dedupeEntry // claimed by the records of batch
		batchBytes int
		index      int
		dropped    int
	)
	defer func() {
		// Claims of records never handed over are released, so that the
		// retry (or another blob's copy) delivers them.
		if in.dedupe != nil && len(keys) > 0 {
			in.dedupe.forget(keys)
		}
	}()
	flush := func(end int) error {
		r := recordRange{from: next, to: end}
		if len(batch) == 0 {
			// Every record of the range was a repeat: nothing to send, but
			// the range still counts toward the blob's acknowledged records.
			in.ackRange(job.item, r)
		} else if err := in.emit(ctx, job.item, batch, keys, r); err != nil {
			return err
		}
		in.metrics.duplicates(job.item.ContentType, dropped, 0)
		next, batch, keys, batchBytes, dropped = end, nil, nil, 0, 0
		return nil
	}
	for ; job.to < 0 || index < job.to; index++ {
		rec, err := decoder.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return next, total, &blobBodyError{fmt.Errorf("decoding blob %s: %w", job.item.ContentID, err)}
		}
		if index < job.from {
			continue
		}
		if in.dedupe != nil && rec.ID != "" {
			creation := rec.CreationTime
			if creation.IsZero() {
				creation = job.item.ContentCreated
			}
			e := newDedupeEntry(rec.ID, creation)
			claimed, evicted := in.dedupe.claim(e, in.apiNow())
			in.metrics.duplicates(job.item.ContentType, 0, evicted)
			if !claimed {
				dropped++
				continue
			}
			keys = append(keys, e)
		}
		batch = append(batch, in.message(job.item, rec))
		batchBytes += len(rec.Raw)
		if len(batch) >= in.cfg.MaxBatchRecords || batchBytes >= in.cfg.MaxBatchBytes {
			if err := flush(index + 1); err != nil {
				return next, total, err
			}
		}
	}
	if index > next {
		if err := flush(index); err != nil {
			return next, total, err
		}
	}
	if job.to < 0 {
		total = index
	}
	return next, total, nil
}

// ackRange acknowledges a range of records that needs no delivery (all
// repeats of records already emitted).
func (in *office365ActivityInput) ackRange(item o365api.ContentItem, r recordRange) {
	ct := item.ContentType
	if in.cursors[ct].ack(item.ContentID, r) {
		in.metrics.blob(ct, "delivered")
	}
	in.committer.schedule(ct)
}

func (in *office365ActivityInput) message(item o365api.ContentItem, rec o365api.Record) *service.Message {
	msg := service.NewMessage(rec.Raw)
	msg.MetaSetMut(MetaTenantID, in.cfg.TenantID)
	msg.MetaSetMut(MetaContentType, item.ContentType)
	msg.MetaSetMut(MetaContentID, item.ContentID)
	msg.MetaSetMut(MetaContentCreated, item.ContentCreated.UTC().Format(time.RFC3339))
	msg.MetaSetMut(MetaWorkload, rec.Workload)
	msg.MetaSetMut(MetaRecordType, rec.RecordType)
	msg.MetaSetMut(MetaOperation, rec.Operation)
	msg.MetaSetMut(MetaRecordID, rec.ID)
	creation := ""
	if !rec.CreationTime.IsZero() {
		creation = rec.CreationTime.UTC().Format(time.RFC3339)
	}
	msg.MetaSetMut(MetaCreationTime, creation)
	return msg
}

// emit hands a batch to ReadBatch. Its ack moves the cursor; its nack queues
// the same records again, so a nack never moves anything forward. The
// batch's claimed record Ids are forgotten on a nack, so that the refetch
// is not taken for a repeat of itself.
func (in *office365ActivityInput) emit(ctx context.Context, item o365api.ContentItem, batch service.MessageBatch, keys []dedupeEntry, r recordRange) error {
	ct := item.ContentType
	cur := in.cursors[ct]
	ack := func(ackCtx context.Context, err error) error {
		if err != nil {
			in.metrics.records(ct, "nacked", len(batch))
			if in.dedupe != nil {
				in.dedupe.forget(keys)
			}
			in.enqueueAfter(ctx, fetchJob{item: item, from: r.from, to: r.to}, time.Second)
			return nil
		}
		in.metrics.records(ct, "acked", len(batch))
		if cur.ack(item.ContentID, r) {
			in.metrics.blob(ct, "delivered")
		}
		return in.committer.commit(ackCtx, ct)
	}
	select {
	case in.batches <- emittedBatch{batch: batch, ack: ack}:
		in.metrics.records(ct, "emitted", len(batch))
		return nil
	case <-ctx.Done():
		return ctx.Err() // streamBlob releases the batch's claims
	}
}

// deadLetter emits a blob that cannot be collected normally as one message
// holding its raw body (as far as it was read, bounded) and the error. Once
// that message is acknowledged the blob counts as delivered: it was, to the
// dead-letter destination. A nack fetches the blob once more.
func (in *office365ActivityInput) deadLetter(ctx context.Context, job fetchJob, body *cappedBuffer, cause error) {
	item, ct := job.item, job.item.ContentType
	cur := in.cursors[ct]
	var raw []byte
	truncated := false
	if body != nil {
		raw, truncated = body.buf, body.truncated
	}
	in.log.Errorf("Sending blob %s of %s (created %s) to the dead-letter path after %d attempts, records from %d on: %v", item.ContentID, ct, item.ContentCreated.Format(time.RFC3339), job.attempt, job.from, cause)
	msg := service.NewMessage(raw)
	msg.MetaSetMut(MetaDeadLetter, "true")
	msg.MetaSetMut(MetaTenantID, in.cfg.TenantID)
	msg.MetaSetMut(MetaContentType, ct)
	msg.MetaSetMut(MetaContentID, item.ContentID)
	msg.MetaSetMut(MetaContentCreated, item.ContentCreated.UTC().Format(time.RFC3339))
	msg.MetaSetMut(MetaDeadLetterContentURI, item.ContentURI)
	msg.MetaSetMut(MetaDeadLetterError, cause.Error())
	msg.MetaSetMut(MetaDeadLetterFromRecord, strconv.Itoa(job.from))
	msg.MetaSetMut(MetaDeadLetterTruncated, strconv.FormatBool(truncated))
	ack := func(ackCtx context.Context, err error) error {
		if err != nil {
			in.metrics.records(ct, "nacked", 1)
			retry := job
			retry.attempt = max(in.cfg.BlobAttempts-1, 0)
			in.enqueueAfter(ctx, retry, time.Second)
			return nil
		}
		in.metrics.blob(ct, "dead_lettered")
		if cur.deadLettered(item.ContentID, recordRange{from: job.from, to: job.to}) {
			in.metrics.blob(ct, "delivered")
		}
		return in.committer.commit(ackCtx, ct)
	}
	select {
	case in.batches <- emittedBatch{batch: service.MessageBatch{msg}, ack: ack}:
	case <-ctx.Done():
	}
}

// cappedBuffer keeps the first max bytes written to it and notes whether
// more came; it never fails a write, so teeing into it cannot break a read.
type cappedBuffer struct {
	max       int
	buf       []byte
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - len(b.buf)
	if len(p) > room {
		b.truncated = true
		b.buf = append(b.buf, p[:max(room, 0)]...)
	} else {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

// backoffDelay grows exponentially from one second, capped at one minute.
func backoffDelay(attempt int) time.Duration {
	d := time.Second << min(attempt, 6)
	return min(d, time.Minute)
}
