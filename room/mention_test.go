package room_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"dealroom"
	"dealroom/room"
)

// mentionMembers is a room with look-alike names on purpose.
var mentionMembers = []room.Member{
	{UserID: "alice", Name: "Alice Rep", Kind: dealroom.Staff},
	{UserID: "u_bob", Name: "Bob Engineer", Kind: dealroom.Staff},
	{UserID: "c_123", Name: "Carol Buyer", Kind: dealroom.Customer},
	{UserID: "u_ann", Name: "Ann Lee", Kind: dealroom.Staff},
	{UserID: "c_ann", Name: "Ann Smith", Kind: dealroom.Customer},
	{UserID: "u_dave", Name: "Dave", Kind: dealroom.Staff},
	{UserID: "u_daver", Name: "Dave Reader", Kind: dealroom.Staff},
	{UserID: "c_elo", Name: "Élodie Martin", Kind: dealroom.Customer},
	{UserID: "u_jm", Name: "Jean-Marc Dupont", Kind: dealroom.Staff},
}

func TestResolveMentions(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		users      []string
		unresolved []string
	}{
		{"no @ at all", "Kick-off on Monday", nil, nil},
		{"full name", "@Alice Rep please send it", []string{"alice"}, nil},
		{"user id", "@alice please", []string{"alice"}, nil},
		{"user id in capitals", "@ALICE please", []string{"alice"}, nil},
		{"unique first name", "@Bob can you check", []string{"u_bob"}, nil},
		{"first name, other case", "@bob can you check", []string{"u_bob"}, nil},
		{"name without spaces", "@BobEngineer ok?", []string{"u_bob"}, nil},
		{"full name, other case", "@carol buyer welcome", []string{"c_123"}, nil},
		{"accented first name", "@Élodie merci", []string{"c_elo"}, nil},
		{"accented first name, lower case", "@élodie merci", []string{"c_elo"}, nil},
		{"hyphenated first name", "@Jean-Marc see above", []string{"u_jm"}, nil},
		{"longest name wins", "@Dave Reader has it", []string{"u_daver"}, nil},
		{"shorter exact name", "@Dave has it", []string{"u_dave"}, nil},
		{"full name of an ambiguous first name", "@Ann Smith, welcome", []string{"c_ann"}, nil},
		{"ambiguous first name", "@Ann can you", nil, []string{"Ann"}},
		{"comma after", "thanks @bob, and", []string{"u_bob"}, nil},
		{"full stop after", "ask @Bob.", []string{"u_bob"}, nil},
		{"in parentheses", "(@bob)", []string{"u_bob"}, nil},
		{"possessive", "@bob's draft", []string{"u_bob"}, nil},
		{"after a newline", "first line\n@bob second", []string{"u_bob"}, nil},
		{"after a hash", "#@bob", []string{"u_bob"}, nil},
		{"order of appearance", "@Carol Buyer and @Bob and @alice", []string{"c_123", "u_bob", "alice"}, nil},
		{"the same person thrice", "@Bob, @u_bob and @Bob Engineer!", []string{"u_bob"}, nil},
		{"email address", "write to bob@seller.example", nil, nil},
		{"email of a customer", "cc carol.buyer@customer.example", nil, nil},
		{"after a dot", "x.@bob", nil, nil},
		{"at sign alone", "meet @ 10am", nil, nil},
		{"at sign at the end", "meet @", nil, nil},
		{"unknown name", "@nobody will read this", nil, []string{"nobody"}},
		{"unknown name with a full stop", "ask @nobody.", nil, []string{"nobody"}},
		{"unknown name twice", "@zed and @zed", nil, []string{"zed"}},
		{"prefix of a name is not the name", "@Alicea here", nil, []string{"Alicea"}},
		{"name prefix of a longer word", "@Bobby here", nil, []string{"Bobby"}},
		{"known and unknown", "@bob and @zed", []string{"u_bob"}, []string{"zed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := room.ResolveMentions(tt.text, mentionMembers, dealroom.Shared)
			assert.Equal(t, tt.users, got.Users, "notified")
			assert.Equal(t, tt.unresolved, got.Unresolved, "unresolved")
		})
	}
}

func TestResolveMentionsInternal(t *testing.T) {
	// Customers never see internal items: naming them there reaches no one,
	// and the writer is told.
	tests := []struct {
		name       string
		text       string
		users      []string
		unresolved []string
	}{
		{"staff by name", "@Bob Engineer see", []string{"u_bob"}, nil},
		{"customer by full name", "@Carol Buyer is slow", nil, []string{"Carol Buyer"}},
		{"customer by first name", "@Carol is slow", nil, []string{"Carol"}},
		{"customer by id", "@c_123 is slow", nil, []string{"c_123"}},
		{"staff and customer", "@Bob ask @Carol Buyer", []string{"u_bob"}, []string{"Carol Buyer"}},
		{"unknown", "@zed", nil, []string{"zed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := room.ResolveMentions(tt.text, mentionMembers, dealroom.Internal)
			assert.Equal(t, tt.users, got.Users)
			assert.Equal(t, tt.unresolved, got.Unresolved)
		})
	}
}

func TestResolveMentionsEveryoneIsMentionable(t *testing.T) {
	// Each member can be reached by their full name and by their id.
	for _, m := range mentionMembers {
		for _, handle := range []string{m.Name, m.UserID, strings.ToUpper(m.Name)} {
			got := room.ResolveMentions("hi @"+handle+"!", mentionMembers, dealroom.Shared)
			assert.Equal(t, []string{m.UserID}, got.Users, "@%s", handle)
			assert.Empty(t, got.Unresolved, "@%s", handle)
		}
	}
}

func TestResolveMentionsWithoutMembers(t *testing.T) {
	got := room.ResolveMentions("@bob @alice", nil, dealroom.Shared)
	assert.Empty(t, got.Users)
	assert.Equal(t, []string{"bob", "alice"}, got.Unresolved)
}

func TestResolveMentionsHostileText(t *testing.T) {
	// Whatever the text, resolving ends and reports only real members.
	for _, text := range []string{
		strings.Repeat("@", 10000),
		strings.Repeat("@bob ", 2000),
		"@\xff\xfe @bob",
		"@\x00bob",
		"@" + strings.Repeat("a", 100000),
		"@Ann\u0301",
	} {
		got := room.ResolveMentions(text, mentionMembers, dealroom.Shared)
		for _, u := range got.Users {
			assert.Contains(t, []string{"alice", "u_bob", "c_123", "u_ann", "c_ann", "u_dave", "u_daver", "c_elo", "u_jm"}, u)
		}
		assert.LessOrEqual(t, len(got.Users), len(mentionMembers))
	}
}
