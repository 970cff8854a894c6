// Package diskblob keeps attachment bytes as files in a directory, named by
// their SHA256, for the embedded deployment. A file is written under a
// temporary name, synced, and renamed into place, and the directory is
// synced too, so that once Put returns the bytes survive a crash, and a
// crash during Put leaves only a temporary file that the next start
// removes.
package diskblob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"dealroom"
	"dealroom/room"
)

var _ room.Blobs = (*Dir)(nil)

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Dir stores blobs under one directory.
type Dir struct {
	root string
	// mu orders Put's placing of a file against Remove (one process owns
	// the data directory): bytes that Put finds in place are there when
	// it returns.
	mu sync.Mutex
}

var _ room.BlobCollector = (*Dir)(nil)

// Open prepares dir for blobs and removes temporary files left by a crash.
func Open(dir string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("diskblob: %w", err)
	}
	tmp, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("diskblob: %w", err)
	}
	for _, e := range tmp {
		os.Remove(filepath.Join(dir, "tmp", e.Name()))
	}
	return &Dir{root: dir}, nil
}

func (d *Dir) path(sum string) string {
	return filepath.Join(d.root, sum[:2], sum)
}

// Put implements room.Blobs.
func (d *Dir) Put(ctx context.Context, r io.Reader, max int64) (room.Blob, error) {
	f, err := os.CreateTemp(filepath.Join(d.root, "tmp"), "upload-*")
	if err != nil {
		return room.Blob{}, dealroom.Unavailable(err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name()) // gone already after a successful rename
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(room.ContextReader(ctx, r), max+1))
	if err != nil {
		var de *dealroom.Error
		if errors.As(err, &de) || ctx.Err() != nil {
			return room.Blob{}, err
		}
		return room.Blob{}, dealroom.Errorf(dealroom.EBADREQUEST, "the upload could not be read: %v", err)
	}
	if n > max {
		return room.Blob{}, dealroom.Errorf(dealroom.ETOOLARGE, "the file is larger than the limit of %d bytes", max)
	}
	if err := f.Sync(); err != nil {
		return room.Blob{}, dealroom.Unavailable(err)
	}
	if err := f.Close(); err != nil {
		return room.Blob{}, dealroom.Unavailable(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	dst := d.path(sum)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := os.Stat(dst); err == nil {
		// The same bytes are here already: stored again now, for
		// StoredBefore.
		now := time.Now()
		if err := os.Chtimes(dst, now, now); err != nil {
			return room.Blob{}, dealroom.Unavailable(err)
		}
		return room.Blob{SHA256: sum, Size: n}, nil
	}
	if _, err := os.Stat(filepath.Dir(dst)); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(filepath.Dir(dst), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return room.Blob{}, dealroom.Unavailable(err)
		}
		if err := syncDir(d.root); err != nil {
			return room.Blob{}, dealroom.Unavailable(err)
		}
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return room.Blob{}, dealroom.Unavailable(err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return room.Blob{}, dealroom.Unavailable(err)
	}
	return room.Blob{SHA256: sum, Size: n}, nil
}

// Open implements room.Blobs.
func (d *Dir) Open(ctx context.Context, sum string) (io.ReadSeekCloser, error) {
	if !shaRE.MatchString(sum) {
		return nil, dealroom.NotFound("file", sum)
	}
	f, err := os.Open(d.path(sum))
	if errors.Is(err, os.ErrNotExist) {
		return nil, dealroom.NotFound("file", sum)
	}
	if err != nil {
		return nil, dealroom.Unavailable(err)
	}
	return f, nil
}

// StoredBefore implements room.BlobCollector: a file's time is when it was
// last stored.
func (d *Dir) StoredBefore(ctx context.Context, cutoff time.Time, fn func(string) error) error {
	return d.Each(ctx, func(sum string, info fs.FileInfo) error {
		if !info.ModTime().Before(cutoff) {
			return nil // recent
		}
		return fn(sum)
	})
}

// Each calls fn with the SHA256 of every blob stored and its file's
// information (its size, and its time: when it was last stored), in the
// order of the sums. A blob removed during the walk may be left out.
func (d *Dir) Each(ctx context.Context, fn func(sum string, info fs.FileInfo) error) error {
	fans, err := os.ReadDir(d.root)
	if err != nil {
		return dealroom.Unavailable(err)
	}
	for _, fan := range fans {
		if !fan.IsDir() || len(fan.Name()) != 2 {
			continue // tmp
		}
		files, err := os.ReadDir(filepath.Join(d.root, fan.Name()))
		if err != nil {
			return dealroom.Unavailable(err)
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			info, err := f.Info()
			if err != nil || !shaRE.MatchString(f.Name()) || !info.Mode().IsRegular() {
				continue // gone meanwhile, or not a blob
			}
			if err := fn(f.Name(), info); err != nil {
				return err
			}
		}
	}
	return nil
}

// Remove implements room.BlobCollector.
func (d *Dir) Remove(ctx context.Context, sum string, cutoff time.Time) error {
	if !shaRE.MatchString(sum) {
		return dealroom.NotFound("file", sum)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.path(sum)
	info, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return dealroom.Unavailable(err)
	}
	if !info.ModTime().Before(cutoff) {
		return nil // stored again meanwhile
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return dealroom.Unavailable(err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !strings.Contains(err.Error(), "invalid argument") {
		return err
	}
	return nil
}
