package mongostore

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"dealroom"
	"dealroom/room"
)

// The engagement records (room.EngagementStore): one document per (room,
// person), per (room, file, person) and per (room, day) of the customer
// side's activity. They are not events and have no transaction: a batch
// of the Tally is one bulk write of upserts per collection, each adding
// with $inc and widening times with $min and $max, so that concurrent
// instances add to the same documents without reading them.
const (
	colEngagementPeople = "engagement_people"
	colEngagementFiles  = "engagement_files"
	colEngagementDays   = "engagement_days"
)

var _ room.EngagementStore = (*Store)(nil)

type visitorDoc struct {
	RoomID     string                  `bson:"room_id"`
	UserID     string                  `bson:"user_id"`
	Side       dealroom.Kind           `bson:"side"`
	FirstVisit time.Time               `bson:"first,omitempty"`
	LastVisit  time.Time               `bson:"last,omitempty"`
	Visits     int                     `bson:"visits"`
	Devices    map[room.DeviceKind]int `bson:"devices"`
	TimeMS     int64                   `bson:"ms"`
}

type fileOpenDoc struct {
	RoomID       string        `bson:"room_id"`
	AttachmentID string        `bson:"attachment_id"`
	UserID       string        `bson:"user_id"`
	Side         dealroom.Kind `bson:"side"`
	Views        int           `bson:"views"`
	Downloads    int           `bson:"downloads"`
	First        time.Time     `bson:"first"`
	Last         time.Time     `bson:"last"`
}

type customerDayDoc struct {
	RoomID string `bson:"room_id"`
	Day    string `bson:"day"`
	Visits int    `bson:"visits"`
	Files  int    `bson:"files"`
}

// ensureEngagementIndexes creates the indexes of a room's records in the
// order RoomEngagement and CustomerDays read them.
func (s *Store) ensureEngagementIndexes(ctx context.Context) error {
	for coll, keys := range map[string]bson.D{
		colEngagementPeople: {{Key: "room_id", Value: 1}, {Key: "user_id", Value: 1}},
		colEngagementFiles:  {{Key: "room_id", Value: 1}, {Key: "attachment_id", Value: 1}, {Key: "user_id", Value: 1}},
		colEngagementDays:   {{Key: "room_id", Value: 1}, {Key: "day", Value: 1}},
	} {
		if _, err := s.db.Collection(coll).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys}); err != nil {
			return s.fail(ctx, fmt.Errorf("mongostore: creating indexes of %s: %w", coll, err))
		}
	}
	return nil
}

func millis(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// AddEngagement implements room.EngagementStore.
func (s *Store) AddEngagement(ctx context.Context, d room.EngagementDelta) error {
	if err := s.begin(); err != nil {
		return err
	}
	var people, files, days []mongo.WriteModel
	for _, p := range d.People {
		inc := bson.D{{Key: "visits", Value: p.Visits()}, {Key: "ms", Value: p.Time.Milliseconds()}}
		for dk, n := range p.Devices {
			inc = append(inc, bson.E{Key: "devices." + string(dk), Value: n})
		}
		up := bson.D{
			{Key: "$set", Value: bson.D{{Key: "room_id", Value: p.Room}, {Key: "user_id", Value: p.UserID}, {Key: "side", Value: p.Side}}},
			{Key: "$inc", Value: inc},
		}
		if !p.FirstVisit.IsZero() {
			up = append(up, bson.E{Key: "$min", Value: bson.D{{Key: "first", Value: millis(p.FirstVisit)}}},
				bson.E{Key: "$max", Value: bson.D{{Key: "last", Value: millis(p.LastVisit)}}})
		}
		people = append(people, mongo.NewUpdateOneModel().SetUpsert(true).
			SetFilter(bson.D{{Key: "_id", Value: bson.D{{Key: "r", Value: p.Room}, {Key: "u", Value: p.UserID}}}}).
			SetUpdate(up))
	}
	for _, f := range d.Files {
		files = append(files, mongo.NewUpdateOneModel().SetUpsert(true).
			SetFilter(bson.D{{Key: "_id", Value: bson.D{{Key: "r", Value: f.Room}, {Key: "a", Value: f.AttachmentID}, {Key: "u", Value: f.UserID}}}}).
			SetUpdate(bson.D{
				{Key: "$set", Value: bson.D{{Key: "room_id", Value: f.Room}, {Key: "attachment_id", Value: f.AttachmentID},
					{Key: "user_id", Value: f.UserID}, {Key: "side", Value: f.Side}}},
				{Key: "$inc", Value: bson.D{{Key: "views", Value: f.Views}, {Key: "downloads", Value: f.Downloads}}},
				{Key: "$min", Value: bson.D{{Key: "first", Value: millis(f.First)}}},
				{Key: "$max", Value: bson.D{{Key: "last", Value: millis(f.Last)}}},
			}))
	}
	for _, x := range d.Days {
		days = append(days, mongo.NewUpdateOneModel().SetUpsert(true).
			SetFilter(bson.D{{Key: "_id", Value: bson.D{{Key: "r", Value: x.Room}, {Key: "d", Value: x.Day}}}}).
			SetUpdate(bson.D{
				{Key: "$set", Value: bson.D{{Key: "room_id", Value: x.Room}, {Key: "day", Value: x.Day}}},
				{Key: "$inc", Value: bson.D{{Key: "visits", Value: x.Visits}, {Key: "files", Value: x.Files}}},
			}))
	}
	for coll, models := range map[string][]mongo.WriteModel{
		colEngagementPeople: people, colEngagementFiles: files, colEngagementDays: days} {
		if len(models) == 0 {
			continue
		}
		if _, err := s.db.Collection(coll).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
			return s.fail(ctx, err)
		}
	}
	return nil
}

// RoomEngagement implements room.EngagementStore.
func (s *Store) RoomEngagement(ctx context.Context, roomID string) (room.RoomEngagement, error) {
	out := room.RoomEngagement{People: []room.PersonEngagement{}, Files: []room.FileEngagement{}}
	if err := s.begin(); err != nil {
		return out, err
	}
	people, err := findAll[visitorDoc](ctx, s.db.Collection(colEngagementPeople), bson.D{{Key: "room_id", Value: roomID}},
		options.Find().SetSort(bson.D{{Key: "room_id", Value: 1}, {Key: "user_id", Value: 1}}))
	if err != nil {
		return out, s.fail(ctx, err)
	}
	for _, p := range people {
		out.People = append(out.People, room.PersonEngagement{UserID: p.UserID, Side: p.Side,
			FirstVisit: utcOrZero(p.FirstVisit), LastVisit: utcOrZero(p.LastVisit), Visits: p.Visits,
			Devices: p.Devices, Time: time.Duration(p.TimeMS) * time.Millisecond})
	}
	files, err := findAll[fileOpenDoc](ctx, s.db.Collection(colEngagementFiles), bson.D{{Key: "room_id", Value: roomID}},
		options.Find().SetSort(bson.D{{Key: "room_id", Value: 1}, {Key: "attachment_id", Value: 1}, {Key: "user_id", Value: 1}}))
	if err != nil {
		return out, s.fail(ctx, err)
	}
	for _, f := range files {
		out.Files = append(out.Files, room.FileEngagement{AttachmentID: f.AttachmentID, UserID: f.UserID, Side: f.Side,
			Views: f.Views, Downloads: f.Downloads, First: f.First.UTC(), Last: f.Last.UTC()})
	}
	return out, nil
}

// CustomerDays implements room.EngagementStore: one find for all rooms.
func (s *Store) CustomerDays(ctx context.Context, rooms []string, from, to string) (map[string][]room.DayActivity, error) {
	out := map[string][]room.DayActivity{}
	if len(rooms) == 0 {
		return out, nil
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	docs, err := findAll[customerDayDoc](ctx, s.db.Collection(colEngagementDays),
		bson.D{{Key: "room_id", Value: bson.D{{Key: "$in", Value: rooms}}},
			{Key: "day", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: to}}}},
		options.Find().SetSort(bson.D{{Key: "room_id", Value: 1}, {Key: "day", Value: 1}}))
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	for _, d := range docs {
		out[d.RoomID] = append(out[d.RoomID], room.DayActivity{Day: d.Day, Visits: d.Visits, Files: d.Files})
	}
	return out, nil
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
