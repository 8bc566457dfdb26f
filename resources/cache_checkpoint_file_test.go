package resources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var hostileKeys = []string{
	"",
	"plain",
	"a/b",
	"../x",
	"..",
	".",
	"/etc/passwd",
	`a\b`,
	"$",
	"%41",
	"k_",
	"~",
	".tmp-123",
	"Audit.SharePoint/tenant$1",
	"ünïcødé/日本語",
	"nul\x00byte",
	"new\nline",
	strings.Repeat("x", 300),
	strings.Repeat("/", 300),
	strings.Repeat("é", 200),
	strings.Repeat("x", 300) + "different tail",
}

func newTestCache(t *testing.T, dir string) *CheckpointFileCache {
	t.Helper()
	conf, err := checkpointFileCacheSpec().ParseYAML(fmt.Sprintf("directory: %q", dir), nil)
	require.NoError(t, err)
	d, err := conf.FieldString(cfFieldDirectory)
	require.NoError(t, err)
	c, err := NewCheckpointFileCache(d)
	require.NoError(t, err)
	return c
}

func TestCheckpointFileHostileKeysRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "checkpoints")
	c := newTestCache(t, dir)
	ctx := t.Context()

	info, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm())

	for i, k := range hostileKeys {
		require.NoError(t, c.Set(ctx, k, fmt.Appendf(nil, "value-%d", i), nil), "key %q", k)
	}
	for i, k := range hostileKeys {
		v, err := c.Get(ctx, k)
		require.NoError(t, err, "key %q", k)
		assert.Equal(t, fmt.Sprintf("value-%d", i), string(v), "key %q", k)
	}

	// Every key became exactly one regular file directly inside the directory, and nothing
	// was written outside it.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, len(hostileKeys))
	for _, e := range entries {
		assert.True(t, e.Type().IsRegular(), e.Name())
		assert.LessOrEqual(t, len(e.Name()), 255, e.Name())
		assert.True(t, strings.HasPrefix(e.Name(), cfKeyPrefix), e.Name())
	}
	parentEntries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	assert.Len(t, parentEntries, 1, "only the cache directory itself may exist in its parent")
}

func TestCheckpointFileKeyEncodingIsReversible(t *testing.T) {
	seen := map[string]string{}
	for _, k := range hostileKeys {
		name := encodeKey(k)
		if prev, dup := seen[name]; dup {
			t.Fatalf("keys %q and %q share file name %q", prev, k, name)
		}
		seen[name] = k
		assert.NotContains(t, name, "/")
		assert.NotEqual(t, ".", name)
		assert.NotEqual(t, "..", name)
		if strings.Contains(name, "~") {
			assert.Greater(t, len(k), cfMaxEncoded/3, "only long keys are hashed: %q", k)
			continue
		}
		got, ok := decodeKey(name)
		require.True(t, ok, name)
		assert.Equal(t, k, got)
	}
}

func TestCheckpointFileGetAddDelete(t *testing.T) {
	c := newTestCache(t, t.TempDir())
	ctx := t.Context()

	_, err := c.Get(ctx, "missing")
	assert.ErrorIs(t, err, service.ErrKeyNotFound)

	require.NoError(t, c.Add(ctx, "a/b", []byte("1"), nil))
	assert.ErrorIs(t, c.Add(ctx, "a/b", []byte("2"), nil), service.ErrKeyAlreadyExists)
	v, err := c.Get(ctx, "a/b")
	require.NoError(t, err)
	assert.Equal(t, "1", string(v), "a refused Add must not change the value")

	require.NoError(t, c.Delete(ctx, "a/b"))
	_, err = c.Get(ctx, "a/b")
	assert.ErrorIs(t, err, service.ErrKeyNotFound)
	require.NoError(t, c.Delete(ctx, "a/b"), "deleting a missing key is not an error")

	entries, err := os.ReadDir(c.dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "Add must not leave its temp file behind")
}

// TestCheckpointFileCrashBeforeRename simulates a writer that died after writing its temp file
// but before the rename: the old value must survive, and the stray temp must be ignored and
// removed when the cache is opened again.
func TestCheckpointFileCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	c := newTestCache(t, dir)
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "cursor", []byte("old"), nil))

	stray := filepath.Join(dir, cfTempPrefix+"crashed")
	require.NoError(t, os.WriteFile(stray, []byte("new-but-never-renamed"), 0o600))

	v, err := c.Get(ctx, "cursor")
	require.NoError(t, err)
	assert.Equal(t, "old", string(v))

	require.NoError(t, c.Set(ctx, "cursor", []byte("newer"), nil))
	v, err = c.Get(ctx, "cursor")
	require.NoError(t, err)
	assert.Equal(t, "newer", string(v))

	// A restart cleans the stray temp file up.
	c2 := newTestCache(t, dir)
	_, err = os.Stat(stray)
	assert.True(t, errors.Is(err, os.ErrNotExist), "stray temp file should be removed on open: %v", err)
	v, err = c2.Get(ctx, "cursor")
	require.NoError(t, err)
	assert.Equal(t, "newer", string(v))
}

func TestCheckpointFileErrorsNameDirectoryAndKey(t *testing.T) {
	dir := t.TempDir()
	c := newTestCache(t, dir)
	// A directory where the item file should be makes the rename fail.
	require.NoError(t, os.Mkdir(filepath.Join(dir, encodeKey("blocked/key")), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, encodeKey("blocked/key"), "x"), nil, 0o600))

	err := c.Set(t.Context(), "blocked/key", []byte("v"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), dir)
	assert.Contains(t, err.Error(), `"blocked/key"`)
}

func TestCheckpointFileConcurrent(t *testing.T) {
	c := newTestCache(t, t.TempDir())
	ctx := t.Context()
	const workers, rounds = 8, 25

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			key := fmt.Sprintf("shared/%d", w%2)
			for r := range rounds {
				val := fmt.Sprintf("w%d-r%d", w, r)
				if err := c.Set(ctx, key, []byte(val), nil); err != nil {
					t.Error(err)
					return
				}
				v, err := c.Get(ctx, key)
				if err != nil {
					t.Error(err)
					return
				}
				// Another writer may have won, but a value is never torn.
				if !strings.HasPrefix(string(v), "w") || !strings.Contains(string(v), "-r") {
					t.Errorf("torn value %q", v)
				}
			}
		})
	}
	wg.Wait()

	entries, err := os.ReadDir(c.dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temp files may remain")
}

func TestCheckpointFileThroughStream(t *testing.T) {
	dir := t.TempDir()
	sb := service.NewStreamBuilder()
	require.NoError(t, sb.SetYAML(fmt.Sprintf(`
logger: {level: NONE}
input:
  generate:
    count: 1
    interval: ""
    mapping: 'root = "cursor-value"'
pipeline:
  processors:
    - cache:
        resource: cp
        operator: set
        key: 'Audit.SharePoint/tenant$1'
        value: '${! content() }'
output:
  drop: {}
cache_resources:
  - label: cp
    checkpoint_file:
      directory: %q
`, dir)))
	stream, err := sb.Build()
	require.NoError(t, err)
	require.NoError(t, stream.Run(context.Background()))

	c := newTestCache(t, dir)
	v, err := c.Get(t.Context(), "Audit.SharePoint/tenant$1")
	require.NoError(t, err)
	assert.Equal(t, "cursor-value", string(v))
}

func TestCheckpointFileConfigErrors(t *testing.T) {
	_, err := checkpointFileCacheSpec().ParseYAML(`{}`, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), cfFieldDirectory)

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = NewCheckpointFileCache(filepath.Join(file, "sub"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "directory")
	assert.Contains(t, err.Error(), file)
}
