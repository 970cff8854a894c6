package room

import (
	"context"
	"time"
)

// CollectBlobs removes the stored bytes that no attachment refers to and
// that were last stored before cutoff: leftovers of uploads whose record
// failed after the bytes were stored. cutoff must lie further back than
// the longest upload takes from its bytes to its record, so that no
// upload in progress loses its bytes. It returns how many blobs it
// removed; with Blobs that cannot collect, none.
func (s *Service) CollectBlobs(ctx context.Context, cutoff time.Time) (int, error) {
	bc, ok := s.Blobs.(BlobCollector)
	if !ok {
		return 0, nil
	}
	// The candidates first, then what is in use: an attachment recorded
	// between the two reads is seen in use, and bytes stored again since
	// the first read are kept by Remove.
	var old []string
	err := bc.StoredBefore(ctx, cutoff, func(sum string) error {
		old = append(old, sum)
		return nil
	})
	if err != nil || len(old) == 0 {
		return 0, err
	}
	used, err := s.Store.BlobsInUse(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sum := range old {
		if _, ok := used[sum]; ok {
			continue
		}
		if err := bc.Remove(ctx, sum, cutoff); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
