// Package backup takes a running embedded deployment's data as one tar
// stream: the store's file as of one moment, and the attachments' bytes,
// laid out as in the data directory, so that extracting the stream into an
// empty directory gives a data directory the server opens as it was. The
// server goes on serving meanwhile.
//
// The store's copy is written to a local file first (Prepare), so that
// the store's read transaction lasts as long as a disk-to-disk copy, not
// as long as a client takes the stream; then the stream is written
// (WriteTo): the store's file, then each attachment. Attachments are
// stored once and never changed, and bytes are removed only when no
// attachment has used them for a day, so every attachment of the copy
// has its bytes in the stream unless its room was deleted meanwhile.
//
// The data directory's generated JWT secret is not part of a backup: it
// signs every token and reply address, and a backup is read by people
// and programs that must not be able to sign them. Keep it (or
// DEALROOM_JWT_SECRET) apart.
package backup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync/atomic"
	"time"

	"dealroom"
)

// Store is the embedded store (boltstore.Store).
type Store interface {
	// Snapshot writes the store's file as of one moment to w.
	Snapshot(ctx context.Context, w io.Writer) (int64, error)
}

// Files is where the attachments' bytes are kept (diskblob.Dir).
type Files interface {
	// Each calls fn with every blob's SHA256 and file information.
	Each(ctx context.Context, fn func(sum string, info fs.FileInfo) error) error
	// Open opens a blob's bytes.
	Open(ctx context.Context, sum string) (io.ReadSeekCloser, error)
}

// Source is what a backup is taken of.
type Source struct {
	Store Store
	// StoreFile is the store file's name in the data directory
	// (boltstore.File).
	StoreFile string
	Files     Files
	// FilesDir is the attachments' directory, relative to the data
	// directory ("attachments").
	FilesDir string
	// Spool is the directory of the store's copy while the stream is
	// written: on a local disk with room for the store's file.
	Spool string
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// taking is set while a backup is taken: one at a time, since each
	// holds a copy of the store on the disk.
	taking atomic.Bool
}

// Backup is a backup being taken: the store's copy, ready to stream.
type Backup struct {
	src    *Source
	spool  *os.File
	size   int64
	closed bool
	// At is when the store was copied.
	At time.Time
}

// Prepare copies the store to a file in the spool directory. Close the
// Backup once done with it. While one is taken, another is refused
// (ECONFLICT): each holds a copy of the store on the disk.
func (s *Source) Prepare(ctx context.Context) (b *Backup, err error) {
	if !s.taking.CompareAndSwap(false, true) {
		return nil, dealroom.Errorf(dealroom.ECONFLICT, "a backup is being taken; take yours once it is done")
	}
	defer func() {
		if err != nil {
			s.taking.Store(false)
		}
	}()
	f, err := os.CreateTemp(s.Spool, ".backup-*.db")
	if err != nil {
		return nil, dealroom.Unavailable(fmt.Errorf("backup: the store's copy: %w", err))
	}
	// Gone from the directory at once where the system allows it: a
	// crash leaves nothing behind.
	os.Remove(f.Name())
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	b = &Backup{src: s, spool: f, At: now().UTC().Truncate(time.Second)}
	if b.size, err = s.Store.Snapshot(ctx, f); err != nil {
		f.Close()
		if dealroom.ErrorCode(err) == dealroom.EINTERNAL && ctx.Err() == nil {
			err = dealroom.Unavailable(fmt.Errorf("backup: the store's copy: %w", err))
		}
		return nil, err
	}
	return b, nil
}

// Close removes the store's copy; another backup may then be taken.
// Calling it twice is safe.
func (b *Backup) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.spool.Close()
	os.Remove(b.spool.Name())
	b.src.taking.Store(false)
	return err
}

// WriteTo writes the tar stream to w: the store's file, then every
// attachment's bytes. An error leaves w without the tar's end, so that a
// cut stream is not taken for a whole one.
func (b *Backup) WriteTo(ctx context.Context, w io.Writer) error {
	tw := tar.NewWriter(w)
	if _, err := b.spool.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: b.src.StoreFile, Mode: 0o600, Size: b.size, ModTime: b.At}); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, b.spool, b.size); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: b.src.FilesDir + "/", Mode: 0o700, ModTime: b.At}); err != nil {
		return err
	}
	dirs := map[string]bool{}
	err := b.src.Files.Each(ctx, func(sum string, info fs.FileInfo) error {
		r, err := b.src.Files.Open(ctx, sum)
		if dealroom.ErrorCode(err) == dealroom.ENOTFOUND {
			return nil // removed meanwhile: no attachment of the copy used it for a day
		}
		if err != nil {
			return err
		}
		defer r.Close()
		size, err := r.Seek(0, io.SeekEnd)
		if err == nil {
			_, err = r.Seek(0, io.SeekStart)
		}
		if err != nil {
			return err
		}
		dir := path.Join(b.src.FilesDir, sum[:2])
		if !dirs[dir] {
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o700, ModTime: b.At}); err != nil {
				return err
			}
		}
		h := &tar.Header{Name: path.Join(dir, sum), Mode: 0o600, Size: size, ModTime: info.ModTime().Truncate(time.Second)}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err == nil && n != size {
			err = errors.New("backup: an attachment's file changed size while it was read")
		}
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
