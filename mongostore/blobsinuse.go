package mongostore

import (
	"context"

	"go.mongodb.org/mongo-driver/bson"
)

// BlobsInUse implements room.Store.
func (s *Store) BlobsInUse(ctx context.Context) (map[string]struct{}, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	sums, err := s.attachments.Distinct(ctx, "sha256", bson.D{})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	used := make(map[string]struct{}, len(sums))
	for _, v := range sums {
		if sum, ok := v.(string); ok {
			used[sum] = struct{}{}
		}
	}
	return used, nil
}
