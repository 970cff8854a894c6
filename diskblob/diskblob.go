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
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"dealroom"
	"dealroom/room"
)

var _ room.Blobs = (*Dir)(nil)

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Dir stores blobs under one directory.
type Dir struct {
	root string
}

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
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(&ctxReader{ctx, r}, max+1))
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
	if _, err := os.Stat(dst); err == nil {
		return room.Blob{SHA256: sum, Size: n}, nil // the same bytes are here already
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

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
