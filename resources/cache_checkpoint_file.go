package resources

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

const (
	cfFieldDirectory = "directory"
)

const (
	// cfKeyPrefix starts every item file name, so that no key (not even the
	// empty one) can produce ".", "..", an empty name or a temp file name.
	cfKeyPrefix = "k_"
	// cfTempPrefix starts every temp file name; it can never be produced by
	// encodeKey because '.' is always percent-encoded.
	cfTempPrefix = ".tmp-"
	// cfMaxEncoded keeps a file name well below NAME_MAX (255 bytes on every
	// Linux file system) once the prefix and the hash suffix are added.
	cfMaxEncoded = 160
)

func checkpointFileCacheSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Stable().
		Categories("Services").
		Summary("Stores each item as one file in a directory, written atomically; safe for input checkpoints.").
		Description(`
This cache exists because Benthos' own `+"`file`"+` cache is not a checkpoint store: it uses the key as a
path (a key containing `+"`/`"+` fails or escapes the directory) and overwrites files in place, so a crash or a
full disk in the middle of a write leaves a truncated checkpoint behind.

`+"`checkpoint_file`"+` instead:

- Maps every key to a file name reversibly: bytes in `+"`[A-Za-z0-9_-]`"+` are kept and every other byte
  (including `+"`/`, `.`, `$`, `%`"+` and every byte of a non-ASCII character) becomes `+"`%XX`"+`, behind a `+"`k_`"+`
  prefix. No key can name a file outside the directory, and the empty key is allowed. Keys whose
  encoding exceeds 160 bytes keep a readable prefix and end in `+"`~`"+` plus the SHA-256 of the whole key.
- Writes a value to a temp file in the same directory, fsyncs it, renames it over the item and
  fsyncs the directory, so that after a crash an item holds either its old or its new value, never
  a mix. `+"`add`"+` publishes with a hard link, which fails if the item already exists.
- Removes temp files left behind by a crash when it starts. A directory must therefore belong to a
  single `+"`checkpoint_file`"+` resource in a single process.

The directory is created (mode 0700) if it does not exist; items are written with mode 0600. Like every
cache resource it is opened on first use, so an unusable directory is reported by the first
component that reads or writes a checkpoint, with the path in the error.

TTLs are ignored: checkpoints must never expire, and an item stays until it is overwritten or
deleted. Errors name the directory and the key, as keys are not secret.`).
		Field(service.NewStringField(cfFieldDirectory).
			Description("The directory that holds the items. Created with mode 0700 if missing. Use a directory on persistent storage that no other process writes to.").
			Example("/var/lib/o365connect/checkpoints")).
		Example("Checkpoints for the audit input", "Keep the input's cursor in a local directory.", `
cache_resources:
  - label: checkpoints
    checkpoint_file:
      directory: /var/lib/o365connect/checkpoints
`)
}

func init() {
	service.MustRegisterCache("checkpoint_file", checkpointFileCacheSpec(),
		func(conf *service.ParsedConfig, _ *service.Resources) (service.Cache, error) {
			dir, err := conf.FieldString(cfFieldDirectory)
			if err != nil {
				return nil, err
			}
			return NewCheckpointFileCache(dir)
		})
}

// CheckpointFileCache is a service.Cache that stores each item in its own file and replaces
// files atomically (temp file, fsync, rename, directory fsync).
type CheckpointFileCache struct {
	dir string
}

// NewCheckpointFileCache opens (creating it if needed) a checkpoint directory and removes the
// temp files a crashed writer left behind.
func NewCheckpointFileCache(dir string) (*CheckpointFileCache, error) {
	if dir == "" {
		return nil, fmt.Errorf("%s: must not be empty", cfFieldDirectory)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: creating %q: %w", cfFieldDirectory, dir, err)
	}
	c := &CheckpointFileCache{dir: dir}
	if err := c.removeStrayTemps(); err != nil {
		return nil, err
	}
	return c, nil
}

// Get returns the stored value of key, or service.ErrKeyNotFound.
func (c *CheckpointFileCache) Get(_ context.Context, key string) ([]byte, error) {
	b, err := os.ReadFile(c.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, service.ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading key %q in %s: %w", key, c.dir, err)
	}
	return b, nil
}

// Set atomically replaces the value of key. The TTL is ignored.
func (c *CheckpointFileCache) Set(_ context.Context, key string, value []byte, _ *time.Duration) error {
	tmp, err := c.writeTemp(key, value)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, c.path(key)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("renaming temp file over key %q in %s: %w", key, c.dir, err)
	}
	return c.syncDir(key)
}

// Add stores key only if it does not exist yet, otherwise it returns
// service.ErrKeyAlreadyExists. The TTL is ignored.
func (c *CheckpointFileCache) Add(_ context.Context, key string, value []byte, _ *time.Duration) error {
	tmp, err := c.writeTemp(key, value)
	if err != nil {
		return err
	}
	// link(2) publishes the complete file under the item name, or fails with EEXIST, in one
	// step: no other writer can slip in between an existence check and the write.
	linkErr := os.Link(tmp, c.path(key))
	_ = os.Remove(tmp)
	if errors.Is(linkErr, fs.ErrExist) {
		return service.ErrKeyAlreadyExists
	}
	if linkErr != nil {
		return fmt.Errorf("linking temp file to key %q in %s: %w", key, c.dir, linkErr)
	}
	return c.syncDir(key)
}

// Delete removes key; deleting a missing key is not an error.
func (c *CheckpointFileCache) Delete(_ context.Context, key string) error {
	err := os.Remove(c.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting key %q in %s: %w", key, c.dir, err)
	}
	return c.syncDir(key)
}

// Close does nothing: every write is already durable when Set returns.
func (c *CheckpointFileCache) Close(context.Context) error {
	return nil
}

func (c *CheckpointFileCache) path(key string) string {
	return filepath.Join(c.dir, encodeKey(key))
}

func (c *CheckpointFileCache) writeTemp(key string, value []byte) (string, error) {
	f, err := os.CreateTemp(c.dir, cfTempPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("creating temp file for key %q in %s: %w", key, c.dir, err)
	}
	name := f.Name()
	fail := func(step string, err error) (string, error) {
		_ = f.Close()
		_ = os.Remove(name)
		return "", fmt.Errorf("%s temp file for key %q in %s: %w", step, key, c.dir, err)
	}
	if _, err := f.Write(value); err != nil {
		return fail("writing", err)
	}
	if err := f.Sync(); err != nil {
		return fail("syncing", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return "", fmt.Errorf("closing temp file for key %q in %s: %w", key, c.dir, err)
	}
	return name, nil
}

// syncDir makes the rename, link or unlink itself durable: without it a crash can bring the old
// directory entry back even though the new file's data was synced.
func (c *CheckpointFileCache) syncDir(key string) error {
	d, err := os.Open(c.dir)
	if err != nil {
		return fmt.Errorf("opening directory %s to sync key %q: %w", c.dir, key, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s for key %q: %w", c.dir, key, err)
	}
	return nil
}

func (c *CheckpointFileCache) removeStrayTemps() error {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("%s: listing %q: %w", cfFieldDirectory, c.dir, err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), cfTempPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(c.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: removing stray temp file %q: %w", cfFieldDirectory, e.Name(), err)
		}
	}
	return nil
}

const cfHexDigits = "0123456789ABCDEF"

// encodeKey maps a key to a file name: "k_" followed by the key with every byte outside
// [A-Za-z0-9_-] written as %XX. Long encodings are cut and suffixed with "~" and the
// key's SHA-256; '~' is itself always encoded, so a cut name cannot equal a short one.
func encodeKey(key string) string {
	var sb strings.Builder
	sb.Grow(len(cfKeyPrefix) + len(key)*3)
	sb.WriteString(cfKeyPrefix)
	for i := 0; i < len(key); i++ {
		b := key[i]
		if isKeySafe(b) {
			sb.WriteByte(b)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte(cfHexDigits[b>>4])
		sb.WriteByte(cfHexDigits[b&0x0f])
	}
	name := sb.String()
	if len(name)-len(cfKeyPrefix) <= cfMaxEncoded {
		return name
	}
	cut := len(cfKeyPrefix) + cfMaxEncoded
	// Never cut through a %XX escape, so the readable part stays decodable.
	for i := cut - 2; i < cut; i++ {
		if name[i] == '%' {
			cut = i
		}
	}
	sum := sha256.Sum256([]byte(key))
	return name[:cut] + "~" + hex.EncodeToString(sum[:])
}

// decodeKey reverses encodeKey for names that were not shortened; ok is false for shortened
// names and for names encodeKey cannot produce.
func decodeKey(name string) (key string, ok bool) {
	rest, found := strings.CutPrefix(name, cfKeyPrefix)
	if !found || strings.Contains(rest, "~") {
		return "", false
	}
	out := make([]byte, 0, len(rest))
	for i := 0; i < len(rest); i++ {
		b := rest[i]
		if b != '%' {
			if !isKeySafe(b) {
				return "", false
			}
			out = append(out, b)
			continue
		}
		if i+2 >= len(rest) {
			return "", false
		}
		hi, lo := strings.IndexByte(cfHexDigits, rest[i+1]), strings.IndexByte(cfHexDigits, rest[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	return string(out), true
}

func isKeySafe(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}
