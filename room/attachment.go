package room

import (
	"context"
	"io"
	"mime"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"dealroom"
)

// Attachment is a file uploaded to a room. Its bytes live in the Blobs
// store, addressed by SHA256, so the same file uploaded twice is kept once.
type Attachment struct {
	ID          string              `json:"id"`
	RoomID      string              `json:"room_id"`
	Name        string              `json:"name"`
	Size        int64               `json:"size"`
	ContentType string              `json:"content_type"`
	SHA256      string              `json:"sha256"`
	Visibility  dealroom.Visibility `json:"visibility"`
	TaskID      string              `json:"task_id,omitempty"`
	UploadedBy  string              `json:"uploaded_by"`
	CreatedAt   time.Time           `json:"created_at"`
}

// Blob describes stored bytes.
type Blob struct {
	SHA256 string
	Size   int64
}

// Blobs stores attachment bytes by content hash.
type Blobs interface {
	// Put reads r to its end and stores the bytes durably before it returns.
	// It fails with ETOOLARGE when r holds more than max bytes, storing
	// nothing, and with EUNAVAILABLE when the backend fails.
	Put(ctx context.Context, r io.Reader, max int64) (Blob, error)
	// Open returns the bytes stored under sha256, ENOTFOUND when there are
	// none.
	Open(ctx context.Context, sha256 string) (io.ReadSeekCloser, error)
}

// BlobCollector is a Blobs whose bytes that no attachment refers to can be
// removed: those of uploads whose record failed after their bytes were
// stored (refused meanwhile, or the store was down).
type BlobCollector interface {
	// StoredBefore calls fn with the sha256 of every blob last stored
	// before cutoff. Storing bytes that are there already counts as
	// storing them again (Put moves their time on).
	StoredBefore(ctx context.Context, cutoff time.Time, fn func(sha256 string) error) error
	// Remove deletes the bytes of sha256 unless they were stored at or
	// after cutoff: a Put of the same bytes that races with Remove either
	// keeps them or stores them anew, never reports bytes that are gone.
	Remove(ctx context.Context, sha256 string, cutoff time.Time) error
}

// Upload is the input of a new attachment, once its bytes are stored.
type Upload struct {
	Name        string
	ContentType string
	Visibility  dealroom.Visibility
	TaskID      string
	Blob        Blob
}

// CleanFileName makes a user-supplied file name safe to store and to send
// back in a Content-Disposition header: no directories, no control
// characters, at most 255 bytes, never empty.
func CleanFileName(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(name)
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '"' || r == '/' || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, name)
	// Bidirectional overrides make "invoice\u202efdp.exe" look like a PDF.
	name = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, name)
	if len(name) > 255 {
		cut := 255
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	// Dots and spaces go together, so that no "." or ".." is left.
	name = strings.TrimFunc(name, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	if name == "" {
		return "file"
	}
	return name
}

// CleanContentType returns ct when it is a well-formed media type, and
// application/octet-stream otherwise.
func CleanContentType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return "application/octet-stream"
	}
	return mime.FormatMediaType(mt, params)
}
