package room

import (
	"time"

	"dealroom"
)

// Limits on messages.
const (
	MaxBody               = 10000
	MaxMessageAttachments = 20
)

// Message is one post in a room's discussion. A reply names its thread's
// root in ParentID; a discussion under a task names the task in TaskID.
// Deleting a message leaves a tombstone so that threads keep their shape.
type Message struct {
	ID          string              `json:"id"`
	RoomID      string              `json:"room_id"`
	Body        string              `json:"body"`
	Author      string              `json:"author"`
	AuthorName  string              `json:"author_name"`
	ParentID    string              `json:"parent_id,omitempty"`
	TaskID      string              `json:"task_id,omitempty"`
	Visibility  dealroom.Visibility `json:"visibility"`
	Mentions    []string            `json:"mentions"`
	Attachments []string            `json:"attachments"`
	CreatedAt   time.Time           `json:"created_at"`
	EditedAt    *time.Time          `json:"edited_at,omitempty"`
	Deleted     bool                `json:"deleted,omitempty"`
	DeletedAt   *time.Time          `json:"deleted_at,omitempty"`
	// ReplyCount is filled by the store for thread roots in listings.
	ReplyCount int `json:"reply_count"`
}

// MessageDraft is the input of a new message.
type MessageDraft struct {
	Body        string              `json:"body"`
	ParentID    string              `json:"parent_id"`
	TaskID      string              `json:"task_id"`
	Visibility  dealroom.Visibility `json:"visibility"`
	Attachments []string            `json:"attachments"`
}

// MessageEdit changes a message's body.
type MessageEdit struct {
	Body string `json:"body"`
}

// MessageFilter selects messages to list.
type MessageFilter struct {
	Room string
	// ParentID lists one thread's replies; empty lists thread roots.
	ParentID string
	// TaskID narrows thread roots to the discussion under one task.
	TaskID string
	// SharedOnly leaves internal messages out (for customers).
	SharedOnly bool
	// After is the seq-ordered position to continue after (0: start).
	After string
	Limit int
}
