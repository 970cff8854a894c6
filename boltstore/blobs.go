package boltstore

import (
	"context"
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// BlobsInUse implements room.Store.
func (s *Store) BlobsInUse(ctx context.Context) (map[string]struct{}, error) {
	used := map[string]struct{}{}
	err := s.read(func(tx *bolt.Tx) error {
		return tx.Bucket(bAttachments).ForEach(func(_, raw []byte) error {
			var a struct {
				SHA256 string `json:"sha256"`
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				return err
			}
			used[a.SHA256] = struct{}{}
			return nil
		})
	})
	return used, err
}
