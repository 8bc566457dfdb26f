package o365sim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// contentRetention is how long a blob stays retrievable after
// contentCreated (mgmt-api §3.6: the samples show exactly 7 days).
const contentRetention = 7 * 24 * time.Hour

// contentIDRegion is the trailing segment of content IDs, like the
// "emea0026" of real ones.
const contentIDRegion = "sim01"

// ContentInfo describes one content blob as subscriptions/content lists it.
type ContentInfo struct {
	ContentType       string
	ContentID         string
	ContentURI        string // absolute, on URL(); empty before Start
	ContentCreated    time.Time
	ContentExpiration time.Time
	Records           int // number of records in the blob, repeats included
}

// ExpectedRecord is the ground truth of one record of a listable blob.
type ExpectedRecord struct {
	ID           string
	ContentType  string
	ContentID    string
	Workload     string
	RecordType   int
	Operation    string
	CreationTime time.Time // UTC, whole seconds, as rendered without a zone
	// Duplicate is true for a repeat of a record (same ID) that an earlier
	// listed blob already holds; counting records with Duplicate false
	// gives the number of distinct IDs.
	Duplicate bool
}

// blob is the metadata of one content blob; its records are generated on
// the fly from key.
type blob struct {
	ct      string
	ctIdx   int
	added   bool
	index   int64 // historic index, or sequence number of an added blob
	created time.Time
	avail   time.Time // when it became listable (== created for historic blobs)
	n       int       // records of its own
	dupSrc  *blob     // the first dupN records repeat dupSrc's first dupN
	dupN    int
	key     uint64
	id      string
	uriBase string // replaces the API host in contentUri (AddForeignBlob)
}

func (b *blob) total() int { return b.dupN + b.n }

// pos orders blobs by availability: the order the API lists them in
// (mgmt-api §3.6). Added blobs sort after historic ones at the same instant.
type pos struct {
	avail int64
	tie   int64
}

func (b *blob) pos() pos {
	if b.added {
		return pos{b.avail.UnixNano(), b.index}
	}
	return pos{b.avail.UnixNano(), 0}
}

func (p pos) less(q pos) bool { return p.avail < q.avail || (p.avail == q.avail && p.tie < q.tie) }

// historic returns blob i of content type ct. Blob i is created at
// origin + i*BlobInterval plus a deterministic jitter below half an
// interval, so creation times stay in index order.
func (s *Server) historic(ctIdx int, i int64) *blob {
	iv := s.cfg.BlobInterval
	key := mix(uint64(s.cfg.Seed), uint64(ctIdx)+1, uint64(i)+1)
	jitter := time.Duration(key%uint64(iv/2/time.Millisecond)) * time.Millisecond
	b := &blob{
		ct:      ContentTypes[ctIdx],
		ctIdx:   ctIdx,
		index:   i,
		created: s.origin.Add(time.Duration(i)*iv + jitter),
		key:     key,
	}
	b.avail = b.created
	b.n = recordCount(mix(key, 0xc0), s.cfg.RecordsPerBlob)
	if i == 0 && s.cfg.HugeBlobRecords > 0 && ContentTypes[ctIdx] == s.cfg.HugeBlobContentType {
		b.n = s.cfg.HugeBlobRecords
	}
	if d := int64(s.cfg.DuplicatesEvery); d > 0 && i > 0 && i%d == 0 {
		b.dupSrc = s.historic(ctIdx, i-1)
		b.dupN = min(2, b.dupSrc.total())
	}
	b.id = contentID(b)
	return b
}

// historicFrom is the first historic index whose blob may be created at
// or after t.
func (s *Server) historicFrom(t time.Time) int64 {
	d := t.Sub(s.origin)
	if d <= 0 {
		return 0
	}
	return max(0, int64(d/s.cfg.BlobInterval)-1)
}

// recordCount varies the records per blob around avg: one blob in ten
// holds a single record, one in ten twice the average.
func recordCount(h uint64, avg int) int {
	switch h % 10 {
	case 0:
		return 1
	case 1:
		return 2 * avg
	default:
		return max(1, avg/2+int((h>>8)%uint64(avg+1)))
	}
}

// contentID renders an ID shaped like the real ones (mgmt-api §3.6):
// <created yyyyMMddHHmmssfff><kind><index>$<created+1h ...>$audit_x$Audit_X$region.
// It contains '$' and is used verbatim in contentUri.
func contentID(b *blob) string {
	kind := "0"
	if b.added {
		kind = "1"
	}
	suffix := kind + fmt.Sprintf("%09d", b.index)
	ct := strings.ReplaceAll(b.ct, ".", "_")
	return stamp17(b.created) + suffix + "$" + stamp17(b.created.Add(time.Hour)) + suffix + "$" + strings.ToLower(ct) + "$" + ct + "$" + contentIDRegion
}

func stamp17(t time.Time) string {
	t = t.UTC()
	return t.Format("20060102150405") + fmt.Sprintf("%03d", t.Nanosecond()/int(time.Millisecond))
}

// parsedID is a syntactically valid content ID.
type parsedID struct {
	ctIdx   int
	added   bool
	index   int64
	created string // stamp17
}

// parseContentID checks the shape of a content ID; ok is false for a
// malformed one (AF20052).
func parseContentID(id string) (parsedID, bool) {
	parts := strings.Split(id, "$")
	if len(parts) != 5 || len(parts[0]) != 27 || len(parts[1]) != 27 || parts[4] != contentIDRegion {
		return parsedID{}, false
	}
	ctIdx := -1
	for i, ct := range ContentTypes {
		u := strings.ReplaceAll(ct, ".", "_")
		if parts[2] == strings.ToLower(u) && parts[3] == u {
			ctIdx = i
		}
	}
	if ctIdx < 0 || parts[0][17:] != parts[1][17:] {
		return parsedID{}, false
	}
	for _, c := range parts[0] {
		if c < '0' || c > '9' {
			return parsedID{}, false
		}
	}
	idx, err := strconv.ParseInt(parts[0][18:], 10, 64)
	if err != nil || (parts[0][17] != '0' && parts[0][17] != '1') {
		return parsedID{}, false
	}
	return parsedID{ctIdx: ctIdx, added: parts[0][17] == '1', index: idx, created: parts[0][:17]}, true
}

// lookup finds the blob of a well-formed content ID; nil when it does not
// exist or is not yet listable (AF20050).
func (s *Server) lookup(p parsedID, id string, now time.Time) *blob {
	if p.added {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.addedIdx[id]
	}
	b := s.historic(p.ctIdx, p.index)
	if b.id != id || b.created.After(now) {
		return nil
	}
	return b
}

func expired(b *blob, now time.Time) bool { return !now.Before(b.created.Add(contentRetention)) }

// listable returns the blobs of ct with contentCreated in [start, end) that
// are listable at now, in order of availability, starting at from; at most
// limit of them.
func (s *Server) listable(ctIdx int, start, end, now time.Time, from pos, limit int) []*blob {
	var hist []*blob
	lo := s.historicFrom(start)
	if f := time.Unix(0, from.avail); f.After(start) {
		lo = max(lo, s.historicFrom(f))
	}
	for i := lo; len(hist) < limit; i++ {
		b := s.historic(ctIdx, i)
		if !b.created.Before(end) || b.created.After(now) {
			break
		}
		if b.created.Before(start) || b.pos().less(from) || expired(b, now) {
			continue
		}
		hist = append(hist, b)
	}
	s.mu.Lock()
	var add []*blob
	for _, b := range s.added {
		if b.ctIdx == ctIdx && !b.created.Before(start) && b.created.Before(end) && !b.avail.After(now) && !b.pos().less(from) && !expired(b, now) {
			add = append(add, b)
		}
	}
	s.mu.Unlock()
	all := append(hist, add...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].pos().less(all[j].pos()) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all
}

// allListable is every blob of ct listable at now, in listing order.
func (s *Server) allListable(ctIdx int, now time.Time) []*blob {
	start := now.Add(-contentRetention)
	end := now.Add(time.Nanosecond)
	return s.listable(ctIdx, start, end, now, pos{avail: -1 << 63}, int(^uint(0)>>1))
}

func (s *Server) info(b *blob, base string) ContentInfo {
	if b.uriBase != "" {
		base = b.uriBase
	}
	return ContentInfo{
		ContentType:       b.ct,
		ContentID:         b.id,
		ContentURI:        base + "/api/v1.0/" + s.cfg.TenantID + "/activity/feed/audit/" + b.id,
		ContentCreated:    b.created,
		ContentExpiration: b.created.Add(contentRetention),
		Records:           b.total(),
	}
}

// ExpectedRecords is the ground truth: every record of every blob listable
// now (of the given content types, all when none are given), late and added
// blobs included, in listing order. Subscription state is ignored.
func (s *Server) ExpectedRecords(contentTypes ...string) []ExpectedRecord {
	if len(contentTypes) == 0 {
		contentTypes = ContentTypes
	}
	now := s.now()
	var out []ExpectedRecord
	for _, ct := range contentTypes {
		ci := ctIndex(ct)
		if ci < 0 {
			continue
		}
		for _, b := range s.allListable(ci, now) {
			for j := range b.total() {
				m := s.recordMetaOf(b, j)
				out = append(out, ExpectedRecord{
					ID: m.id, ContentType: b.ct, ContentID: b.id, Workload: m.workload,
					RecordType: m.recordType, Operation: m.operation, CreationTime: m.creation, Duplicate: m.dup,
				})
			}
		}
	}
	return out
}

// Blobs lists the blobs of contentType listable now, in listing order.
func (s *Server) Blobs(contentType string) []ContentInfo {
	ci := ctIndex(contentType)
	if ci < 0 {
		return nil
	}
	base := s.URL()
	var out []ContentInfo
	for _, b := range s.allListable(ci, s.now()) {
		out = append(out, s.info(b, base))
	}
	return out
}

// AddBlob adds a blob of records new records to contentType, listable from
// now on even when created lies in a window a client already listed (late
// content, mgmt-api §3.6). A zero created means now. It panics on an
// unknown content type.
func (s *Server) AddBlob(contentType string, created time.Time, records int) ContentInfo {
	return s.addBlob(contentType, created, records, nil, 0)
}

// AddDuplicateBlob adds a blob, listable now, whose first repeats records
// are copies (same Id) of the first records of the listable blob ofContentID
// (the newest listable blob of contentType when empty), followed by one new
// record. ExpectedRecords marks the copies Duplicate.
func (s *Server) AddDuplicateBlob(contentType, ofContentID string, repeats int) (ContentInfo, error) {
	ci := ctIndex(contentType)
	if ci < 0 {
		return ContentInfo{}, fmt.Errorf("content type %q is not one of %s", contentType, strings.Join(ContentTypes, ", "))
	}
	now := s.now()
	var src *blob
	if ofContentID == "" {
		all := s.allListable(ci, now)
		if len(all) == 0 {
			return ContentInfo{}, fmt.Errorf("no listable blob of %s to duplicate", contentType)
		}
		src = all[len(all)-1]
	} else if p, ok := parseContentID(ofContentID); ok {
		src = s.lookup(p, ofContentID, now)
	}
	if src == nil {
		return ContentInfo{}, fmt.Errorf("content %q does not exist", ofContentID)
	}
	repeats = max(1, min(repeats, src.total()))
	return s.addBlob(contentType, now, 1, src, repeats), nil
}

// AddForeignBlob is AddBlob for a blob whose contentUri points at uriBase
// (scheme and host) instead of the API host, as a tampered or misrouted
// listing would: a client must refuse to fetch it with its token.
func (s *Server) AddForeignBlob(contentType string, created time.Time, records int, uriBase string) ContentInfo {
	return s.addBlobAt(contentType, created, records, nil, 0, uriBase)
}

func (s *Server) addBlob(ct string, created time.Time, records int, dupSrc *blob, dupN int) ContentInfo {
	return s.addBlobAt(ct, created, records, dupSrc, dupN, "")
}

func (s *Server) addBlobAt(ct string, created time.Time, records int, dupSrc *blob, dupN int, uriBase string) ContentInfo {
	ci := ctIndex(ct)
	if ci < 0 {
		panic(fmt.Sprintf("o365sim: content type %q is not one of %s", ct, strings.Join(ContentTypes, ", ")))
	}
	now := s.now()
	if created.IsZero() {
		created = now
	}
	s.mu.Lock()
	seq := int64(len(s.added) + 1)
	b := &blob{
		ct: ct, ctIdx: ci, added: true, index: seq,
		created: created.UTC().Truncate(time.Millisecond), avail: now,
		n: max(1, records), dupSrc: dupSrc, dupN: dupN,
		key:     mix(uint64(s.cfg.Seed), uint64(ci)+1, uint64(seq)|1<<62),
		uriBase: uriBase,
	}
	b.id = contentID(b)
	s.added = append(s.added, b)
	s.addedIdx[b.id] = b
	url := s.url
	s.mu.Unlock()
	return s.info(b, url)
}

// mix is a splitmix64-style hash of its inputs.
func mix(vs ...uint64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, v := range vs {
		h ^= v + 0x9e3779b97f4a7c15 + h<<6 + h>>2
		h = splitmix(h)
	}
	return h
}

func splitmix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// guidFrom renders a version-4-shaped GUID from two hash words.
func guidFrom(a, b uint64) string {
	var g [16]byte
	x, y := splitmix(a^0x5bd1e995), splitmix(b+a)
	for i := range 8 {
		g[i] = byte(x >> (8 * i))
		g[8+i] = byte(y >> (8 * i))
	}
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return formatGUID(g)
}
