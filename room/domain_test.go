package room

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"dealroom"
)

var (
	d0    = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	d1    = d0.Add(time.Hour)
	alice = dealroom.Actor{ID: "alice", Name: "Alice Rep", Kind: dealroom.Staff, Role: dealroom.Rep}
)

func requireInvalid(tb testing.TB, err error, field string) {
	tb.Helper()
	require.Error(tb, err)
	assert.Equal(tb, dealroom.EINVALID, dealroom.ErrorCode(err), "error %v", err)
	var e *dealroom.Error
	require.ErrorAs(tb, err, &e)
	assert.Equal(tb, field, e.Field, "the error names the offending field")
}

func fptr(v float64) *float64 { return &v }

func TestNewRoomDefaults(t *testing.T) {
	r, err := newRoom(Draft{Name: "  Acme renewal ", Company: " Acme "}, "r_1", alice, d0)
	require.NoError(t, err)
	assert.Equal(t, "r_1", r.ID)
	assert.Equal(t, "Acme renewal", r.Name)
	assert.Equal(t, "Acme", r.Company)
	assert.Equal(t, Discovery, r.Stage, "a room starts at the first stage")
	assert.Equal(t, DefaultPipeline, r.Pipeline)
	assert.Equal(t, Unknown, r.CloseWindow, "without a forecast the window is unknown")
	assert.Nil(t, r.Value)
	assert.Equal(t, "", r.Currency)
	assert.NotNil(t, r.Tags)
	assert.Empty(t, r.Tags)
	assert.Equal(t, "alice", r.OwnerID)
	assert.Equal(t, "alice", r.CreatedBy)
	assert.Equal(t, d0, r.CreatedAt)
	assert.Equal(t, d0, r.UpdatedAt)
	assert.False(t, r.Closed())

	// The default pipeline is the journey of the sales method, in order.
	assert.Equal(t, []Stage{"discovery", "solution", "trust", "signing", "implementation", "relationship"}, DefaultPipeline)
	r.Pipeline[0] = "mutated"
	assert.Equal(t, Discovery, DefaultPipeline[0], "a room does not share the default pipeline")
}

func TestNewRoomKeepsEveryField(t *testing.T) {
	r, err := newRoom(Draft{Name: "Globex", Company: "Globex Corp", Stage: Signing, Value: fptr(125000.5),
		Currency: "EUR", CloseWindow: ThisMonth, Tags: []string{"enterprise", " emea ", "enterprise"}}, "r_2", alice, d0)
	require.NoError(t, err)
	assert.Equal(t, Signing, r.Stage)
	require.NotNil(t, r.Value)
	assert.Equal(t, 125000.5, *r.Value)
	assert.Equal(t, "EUR", r.Currency)
	assert.Equal(t, ThisMonth, r.CloseWindow)
	assert.Equal(t, []string{"enterprise", "emea"}, r.Tags, "tags are trimmed and deduplicated")
}

func TestRoomStages(t *testing.T) {
	for _, s := range append(slices.Clone(DefaultPipeline), Won, Lost) {
		r, err := newRoom(Draft{Name: "n", Company: "c", Stage: s}, "r", alice, d0)
		require.NoError(t, err, s)
		assert.Equal(t, s, r.Stage)
		assert.Equal(t, s == Won || s == Lost, r.Closed(), s)
	}
	for _, s := range []Stage{"Discovery", "DISCOVERY", "closed", "negotiation", " discovery", "won ", "-"} {
		_, err := newRoom(Draft{Name: "n", Company: "c", Stage: s}, "r", alice, d0)
		requireInvalid(t, err, "stage")
	}
}

func TestCustomPipeline(t *testing.T) {
	r, err := newRoom(Draft{Name: "n", Company: "c", Pipeline: []Stage{"qualify", "demo", "poc_2"}}, "r", alice, d0)
	require.NoError(t, err)
	assert.Equal(t, Stage("qualify"), r.Stage, "the room starts at its own pipeline's first stage")
	assert.Equal(t, []Stage{"qualify", "demo", "poc_2"}, r.Pipeline)

	_, err = newRoom(Draft{Name: "n", Company: "c", Pipeline: []Stage{"qualify"}, Stage: Discovery}, "r", alice, d0)
	requireInvalid(t, err, "stage")
	r, err = newRoom(Draft{Name: "n", Company: "c", Pipeline: []Stage{"qualify"}, Stage: Lost}, "r", alice, d0)
	require.NoError(t, err, "won and lost belong to every pipeline")
	assert.True(t, r.Closed())

	tooLong := make([]Stage, MaxPipeline+1)
	for i := range tooLong {
		tooLong[i] = Stage(fmt.Sprintf("s%d", i))
	}
	for name, p := range map[string][]Stage{
		"won in the pipeline":  {"qualify", Won},
		"lost in the pipeline": {Lost},
		"duplicate stage":      {"a", "b", "a"},
		"capitals":             {"Qualify"},
		"space":                {"due diligence"},
		"leading digit":        {"1st"},
		"empty stage":          {""},
		"too long a name":      {Stage("a" + strings.Repeat("b", 40))},
		"path":                 {"../x"},
		"too many stages":      tooLong,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newRoom(Draft{Name: "n", Company: "c", Pipeline: p}, "r", alice, d0)
			requireInvalid(t, err, "pipeline")
		})
	}
	_, err = newRoom(Draft{Name: "n", Company: "c", Pipeline: tooLong[:MaxPipeline]}, "r", alice, d0)
	assert.NoError(t, err, "%d stages are fine", MaxPipeline)
}

func TestCloseWindows(t *testing.T) {
	assert.Equal(t, []CloseWindow{"this_month", "next_month", "quarter", "half_year", "unknown"}, CloseWindows)
	for _, w := range CloseWindows {
		r, err := newRoom(Draft{Name: "n", Company: "c", CloseWindow: w}, "r", alice, d0)
		require.NoError(t, err)
		assert.Equal(t, w, r.CloseWindow)
	}
	for _, w := range []CloseWindow{"This_Month", "this month", "year", "next_quarter", "unknown "} {
		_, err := newRoom(Draft{Name: "n", Company: "c", CloseWindow: w}, "r", alice, d0)
		requireInvalid(t, err, "close_window")
	}
}

func TestNewRoomRefusesBadDrafts(t *testing.T) {
	tags := make([]string, MaxTags+1)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	tests := []struct {
		name  string
		d     Draft
		field string
	}{
		{"no name", Draft{Company: "c"}, "name"},
		{"blank name", Draft{Name: "   ", Company: "c"}, "name"},
		{"name too long", Draft{Name: strings.Repeat("n", MaxName+1), Company: "c"}, "name"},
		{"name on two lines", Draft{Name: "a\nb", Company: "c"}, "name"},
		{"name with a control character", Draft{Name: "a\x00b", Company: "c"}, "name"},
		{"no company", Draft{Name: "n"}, "company"},
		{"company too long", Draft{Name: "n", Company: strings.Repeat("c", MaxName+1)}, "company"},
		{"negative value", Draft{Name: "n", Company: "c", Value: fptr(-1)}, "value"},
		{"value too large", Draft{Name: "n", Company: "c", Value: fptr(MaxValue * 10)}, "value"},
		{"value infinite", Draft{Name: "n", Company: "c", Value: fptr(math.Inf(1))}, "value"},
		{"currency lower case", Draft{Name: "n", Company: "c", Currency: "eur"}, "currency"},
		{"currency too long", Draft{Name: "n", Company: "c", Currency: "EURO"}, "currency"},
		{"currency symbol", Draft{Name: "n", Company: "c", Currency: "€"}, "currency"},
		{"too many tags", Draft{Name: "n", Company: "c", Tags: tags}, "tags"},
		{"empty tag", Draft{Name: "n", Company: "c", Tags: []string{"ok", " "}}, "tags"},
		{"tag too long", Draft{Name: "n", Company: "c", Tags: []string{strings.Repeat("t", MaxTag+1)}}, "tags"},
		{"tag on two lines", Draft{Name: "n", Company: "c", Tags: []string{"a\nb"}}, "tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := newRoom(tt.d, "r", alice, d0)
			requireInvalid(t, err, tt.field)
			assert.Equal(t, Room{}, r)
		})
	}
	r, err := newRoom(Draft{Name: "n", Company: "c", Tags: append(tags[:MaxTags:MaxTags], tags[0])}, "r", alice, d0)
	require.NoError(t, err, "the tag limit counts distinct tags")
	assert.Len(t, r.Tags, MaxTags)
	r, err = newRoom(Draft{Name: "n", Company: "c", Value: fptr(0)}, "r", alice, d0)
	require.NoError(t, err)
	require.NotNil(t, r.Value, "a zero value is a value, not none")
	assert.Equal(t, 0.0, *r.Value)
}

func baseRoom(t *testing.T) Room {
	t.Helper()
	r, err := newRoom(Draft{Name: "Acme", Company: "Acme Inc", Value: fptr(1000), Currency: "EUR",
		CloseWindow: Quarter, Tags: []string{"a"}}, "r_1", alice, d0)
	require.NoError(t, err)
	return r
}

func TestRoomApply(t *testing.T) {
	tests := []struct {
		name    string
		p       Patch
		changed []string
		check   func(t *testing.T, r Room)
	}{
		{"name", Patch{Name: dealroom.Some(" Acme 2027 ")}, []string{"name"},
			func(t *testing.T, r Room) { assert.Equal(t, "Acme 2027", r.Name) }},
		{"company", Patch{Company: dealroom.Some("Acme GmbH")}, []string{"company"},
			func(t *testing.T, r Room) { assert.Equal(t, "Acme GmbH", r.Company) }},
		{"stage", Patch{Stage: dealroom.Some(Trust)}, []string{"stage"},
			func(t *testing.T, r Room) { assert.Equal(t, Trust, r.Stage) }},
		{"won", Patch{Stage: dealroom.Some(Won)}, []string{"stage"},
			func(t *testing.T, r Room) { assert.True(t, r.Closed()) }},
		{"value", Patch{Value: dealroom.Some(2500.0)}, []string{"value"},
			func(t *testing.T, r Room) { require.NotNil(t, r.Value); assert.Equal(t, 2500.0, *r.Value) }},
		{"value cleared", Patch{Value: dealroom.Opt[float64]{Set: true, Null: true}}, []string{"value"},
			func(t *testing.T, r Room) { assert.Nil(t, r.Value) }},
		{"currency", Patch{Currency: dealroom.Some("USD")}, []string{"currency"},
			func(t *testing.T, r Room) { assert.Equal(t, "USD", r.Currency) }},
		{"close window", Patch{CloseWindow: dealroom.Some(ThisMonth)}, []string{"close_window"},
			func(t *testing.T, r Room) { assert.Equal(t, ThisMonth, r.CloseWindow) }},
		{"tags", Patch{Tags: dealroom.Some([]string{"b", "a", "b"})}, []string{"tags"},
			func(t *testing.T, r Room) { assert.Equal(t, []string{"b", "a"}, r.Tags) }},
		{"same values", Patch{Name: dealroom.Some("Acme"), Stage: dealroom.Some(Discovery), Value: dealroom.Some(1000.0),
			Currency: dealroom.Some("EUR"), CloseWindow: dealroom.Some(Quarter), Tags: dealroom.Some([]string{"a"})}, nil,
			func(t *testing.T, r Room) { assert.Equal(t, d0, r.UpdatedAt, "no change, no new updated_at") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := baseRoom(t)
			n, changed, err := r.apply(tt.p, d1)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.changed, changed)
			tt.check(t, n)
			if len(tt.changed) > 0 {
				assert.Equal(t, d1, n.UpdatedAt)
			}
			assert.Equal(t, baseRoom(t), r, "the room applied to stays as it was")
		})
	}
}

func TestRoomApplyRefuses(t *testing.T) {
	for name, tt := range map[string]struct {
		p     Patch
		field string
	}{
		"empty name":           {Patch{Name: dealroom.Some("")}, "name"},
		"null name":            {Patch{Name: dealroom.Opt[string]{Set: true, Null: true}}, "name"},
		"unknown stage":        {Patch{Stage: dealroom.Some(Stage("closed"))}, "stage"},
		"null stage":           {Patch{Stage: dealroom.Opt[Stage]{Set: true, Null: true}}, "stage"},
		"negative value":       {Patch{Value: dealroom.Some(-5.0)}, "value"},
		"bad currency":         {Patch{Currency: dealroom.Some("usd")}, "currency"},
		"bad close window":     {Patch{CloseWindow: dealroom.Some(CloseWindow("soon"))}, "close_window"},
		"null window":          {Patch{CloseWindow: dealroom.Opt[CloseWindow]{Set: true, Null: true}}, "close_window"},
		"bad tag":              {Patch{Tags: dealroom.Some([]string{""})}, "tags"},
		"good name, bad stage": {Patch{Name: dealroom.Some("New"), Stage: dealroom.Some(Stage("x"))}, "stage"},
	} {
		t.Run(name, func(t *testing.T) {
			r := baseRoom(t)
			n, changed, err := r.apply(tt.p, d1)
			requireInvalid(t, err, tt.field)
			assert.Nil(t, changed)
			assert.Equal(t, baseRoom(t), n, "nothing is half applied")
		})
	}
}

func TestRoomForCustomer(t *testing.T) {
	r := baseRoom(t)
	r.Head = 12
	lc := d1
	r.LastCustomerActivityAt = &lc
	raw, err := json.Marshal(r.ForCustomer())
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{"id", "name", "company", "stage", "pipeline", "created_at", "head"}, keys,
		"a customer sees no value, currency, forecast, tags, owner or activity")
	assert.ElementsMatch(t, customerFields, keys, "the room.updated filter matches the customer view")
}

func TestNewMember(t *testing.T) {
	m, err := newMember(MemberDraft{UserID: "carol", Name: " Carol Buyer ", Kind: dealroom.Customer}, "alice", d0)
	require.NoError(t, err)
	assert.Equal(t, Member{UserID: "carol", Name: "Carol Buyer", Kind: dealroom.Customer, Access: Write,
		RoleInRoom: PlainMember, AddedBy: "alice", AddedAt: d0}, m, "members write unless told otherwise")

	m, err = newMember(MemberDraft{UserID: "bob", Name: "Bob", Kind: dealroom.Staff, RoleInRoom: Owner, Access: Write}, "alice", d0)
	require.NoError(t, err)
	assert.Equal(t, Owner, m.RoleInRoom)

	for _, id := range []string{"auth0|5f1c", "bob@seller.example", "u:1", "a.b-c_d+e", strings.Repeat("x", 128)} {
		_, err := newMember(MemberDraft{UserID: id, Name: "X", Kind: dealroom.Staff}, "alice", d0)
		assert.NoError(t, err, "user id %q", id)
	}

	tests := []struct {
		name  string
		d     MemberDraft
		field string
	}{
		{"no user id", MemberDraft{Name: "X", Kind: dealroom.Staff}, "user_id"},
		{"user id with a space", MemberDraft{UserID: "bob smith", Name: "X", Kind: dealroom.Staff}, "user_id"},
		{"user id starting with a dot", MemberDraft{UserID: ".bob", Name: "X", Kind: dealroom.Staff}, "user_id"},
		{"user id with a slash", MemberDraft{UserID: "../bob", Name: "X", Kind: dealroom.Staff}, "user_id"},
		{"user id with a newline", MemberDraft{UserID: "bob\n", Name: "X", Kind: dealroom.Staff}, "user_id"},
		{"user id too long", MemberDraft{UserID: strings.Repeat("x", 129), Name: "X", Kind: dealroom.Staff}, "user_id"},
		{"no name", MemberDraft{UserID: "x", Kind: dealroom.Staff}, "name"},
		{"name too long", MemberDraft{UserID: "x", Name: strings.Repeat("n", 101), Kind: dealroom.Staff}, "name"},
		{"no kind", MemberDraft{UserID: "x", Name: "X"}, "kind"},
		{"unknown kind", MemberDraft{UserID: "x", Name: "X", Kind: "partner"}, "kind"},
		{"unknown access", MemberDraft{UserID: "x", Name: "X", Kind: dealroom.Staff, Access: "admin"}, "access"},
		{"unknown role", MemberDraft{UserID: "x", Name: "X", Kind: dealroom.Staff, RoleInRoom: "boss"}, "role_in_room"},
		{"customer owner", MemberDraft{UserID: "x", Name: "X", Kind: dealroom.Customer, RoleInRoom: Owner}, "role_in_room"},
		{"owner with read access", MemberDraft{UserID: "x", Name: "X", Kind: dealroom.Staff, RoleInRoom: Owner, Access: Read}, "access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newMember(tt.d, "alice", d0)
			requireInvalid(t, err, tt.field)
		})
	}
}

func TestCheckEmail(t *testing.T) {
	for in, want := range map[string]string{
		"erin@customer.example":          "erin@customer.example",
		"  erin@customer.example\n ":     "erin@customer.example",
		"Erin.Doe+deals@Sub.Example.COM": "Erin.Doe+deals@Sub.Example.COM",
	} {
		got, err := checkEmail("email", in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{
		"", "erin", "erin@", "@customer.example", "erin@localhost", "Erin <erin@customer.example>",
		"erin@customer.example, bob@customer.example", "erin@@customer.example", "erin @customer.example",
		strings.Repeat("e", 250) + "@x.example", "erin@customer.example\r\nBcc: x@y.example",
	} {
		_, err := checkEmail("email", in)
		requireInvalid(t, err, "email")
	}
}

func TestInviteStatus(t *testing.T) {
	exp := d0.Add(14 * 24 * time.Hour)
	at := d0.Add(time.Hour)
	tests := []struct {
		name string
		inv  Invite
		now  time.Time
		want string
	}{
		{"fresh", Invite{ExpiresAt: exp}, d0, "pending"},
		{"a millisecond before expiry", Invite{ExpiresAt: exp}, exp.Add(-time.Millisecond), "pending"},
		{"at expiry", Invite{ExpiresAt: exp}, exp, "expired"},
		{"after expiry", Invite{ExpiresAt: exp}, exp.Add(time.Hour), "expired"},
		{"revoked", Invite{ExpiresAt: exp, RevokedAt: &at}, d1, "revoked"},
		{"revoked and expired", Invite{ExpiresAt: exp, RevokedAt: &at}, exp.Add(time.Hour), "revoked"},
		{"accepted", Invite{ExpiresAt: exp, AcceptedAt: &at}, d1, "accepted"},
		{"accepted, later expired", Invite{ExpiresAt: exp, AcceptedAt: &at}, exp.Add(time.Hour), "accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.inv.Status(tt.now))
		})
	}
}

func TestInviteCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c := NewInviteCode()
		assert.False(t, seen[c], "codes do not repeat")
		seen[c] = true
		assert.GreaterOrEqual(t, len(c)*5, 128, "a code carries at least 128 bits")
		assert.Regexp(t, `^[0-9a-z]+$`, c, "codes are URL-safe")
		id := InviteID(c)
		assert.Equal(t, id, InviteID(c), "the id of a code is stable")
		assert.True(t, strings.HasPrefix(id, "i_"))
		assert.NotContains(t, id, c, "the stored id does not reveal the code")
	}
	assert.NotEqual(t, InviteID("a"), InviteID("b"))
}

func TestCustomerID(t *testing.T) {
	a := CustomerID("Erin@Customer.Example")
	assert.Equal(t, a, CustomerID(" erin@customer.example "), "the same person in any spelling")
	assert.NotEqual(t, a, CustomerID("erin2@customer.example"))
	assert.True(t, strings.HasPrefix(a, "c_"))
	assert.NotContains(t, strings.ToLower(a), "erin", "a customer id does not reveal the email")
	assert.NoError(t, checkUserID("user_id", a), "a customer id is a valid user id")
}

func TestNewIDSortsByTime(t *testing.T) {
	var ids []string
	for i := range 50 {
		ids = append(ids, NewID("t", d0.Add(time.Duration(i)*time.Millisecond)))
	}
	assert.True(t, slices.IsSorted(ids), "ids sort by creation time")
	assert.NotEqual(t, NewID("t", d0), NewID("t", d0), "ids of one millisecond differ")
	id := NewID("m", d0)
	assert.Regexp(t, `^m_[0-9a-z]{26}$`, id)
	assert.NoError(t, checkUserID("x", id))
}

func TestCleanFileName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"proposal.pdf", "proposal.pdf"},
		{"Angebot März 2026.docx", "Angebot März 2026.docx"},
		{"../../etc/passwd", "passwd"},
		{"..\\..\\windows\\win.ini", "win.ini"},
		{"C:\\Users\\rep\\Desktop\\quote.xlsx", "quote.xlsx"},
		{"/absolute/path/contract.pdf", "contract.pdf"},
		{"dir/", "dir"},
		{"..", "file"},
		{".", "file"},
		{"...", "file"},
		{"/", "file"},
		{"\\", "file"},
		{"", "file"},
		{"   ", "file"},
		{".bashrc", "bashrc"},
		{"report.pdf.", "report.pdf"},
		{"a\x00b.txt", "ab.txt"},
		{"line\r\nbreak.txt", "linebreak.txt"},
		{"tab\there.txt", "tabhere.txt"},
		{"esc\x1b[31m.txt", "esc[31m.txt"},
		{"del\x7f.txt", "del.txt"},
		{"c1\u0085.txt", "c1.txt"},
		{`quote".txt`, "quote.txt"},
		{`a"; filename="evil.exe`, "a; filename=evil.exe"},
		{"bad\xffutf8.txt", "badutf8.txt"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			assert.Equal(t, tt.want, CleanFileName(tt.in))
		})
	}
}

// safeName is what every cleaned name must be: no directory part, no
// control characters or quotes, valid UTF-8, 1 to 255 bytes, and not a
// name that means a directory.
func safeName(t *testing.T, in, got string) {
	t.Helper()
	assert.NotEmpty(t, got, "%q", in)
	assert.LessOrEqual(t, len(got), 255, "%q", in)
	assert.True(t, utf8.ValidString(got), "%q gave invalid UTF-8 %q", in, got)
	assert.NotContains(t, got, "/", "%q", in)
	assert.NotContains(t, got, "\\", "%q", in)
	assert.NotContains(t, got, `"`, "%q", in)
	assert.Equal(t, -1, strings.IndexFunc(got, unicode.IsControl), "%q gave %q", in, got)
	assert.NotContains(t, []string{".", ".."}, got, "%q cleaned to a directory name", in)
	assert.Equal(t, strings.TrimSpace(got), got, "%q gave %q with surrounding space", in, got)
}

func TestCleanFileNameHostile(t *testing.T) {
	for _, in := range []string{
		"../../etc/passwd", "..", "./.", "x/..", " .. ", " . ", "x/ ..", "..\t", "\u00a0..\u00a0", "\x00..\x00",
		"a/b\\c/../d", strings.Repeat("../", 100), "\"\"\"", "\r\n", "%2e%2e%2f", "....//....//x",
	} {
		safeName(t, in, CleanFileName(in))
	}
}

func TestCleanFileNameLength(t *testing.T) {
	got := CleanFileName(strings.Repeat("a", 300) + ".pdf")
	assert.Len(t, got, 255, "long names are cut to 255 bytes")

	// Multi-byte characters are never cut in half.
	for _, r := range []string{"é", "€", "😀"} {
		got := CleanFileName(strings.Repeat(r, 200))
		assert.LessOrEqual(t, len(got), 255)
		assert.Greater(t, len(got), 255-len(r), "no more is cut than needed")
		assert.True(t, utf8.ValidString(got), "%s names stay valid UTF-8", r)
	}
	assert.Equal(t, strings.Repeat("b", 255), CleanFileName(strings.Repeat("b", 255)), "255 bytes are kept")
	safeName(t, "long + space", CleanFileName(strings.Repeat("a", 254)+" b"))
	safeName(t, "long + dot", CleanFileName(strings.Repeat("a", 254)+".b"))
}

func TestCleanFileNameLongNameCostsLittle(t *testing.T) {
	// A multipart header can carry a file name of megabytes. Cleaning it
	// must cost work in proportion to its length, not to its length times
	// what is cut off (a name of 40 000 characters took seconds).
	long := strings.Repeat("a", 5000)
	allocs := testing.AllocsPerRun(1, func() { CleanFileName(long) })
	assert.Less(t, allocs, 50.0, "cutting a long name allocates per character cut")
}

func TestCleanContentType(t *testing.T) {
	tests := []struct{ in, want string }{
		{"application/pdf", "application/pdf"},
		{"TEXT/HTML", "text/html"},
		{"text/plain; charset=UTF-8", "text/plain; charset=UTF-8"},
		{"text/plain;charset=utf-8", "text/plain; charset=utf-8"},
		{"", "application/octet-stream"},
		{"pdf", "application/octet-stream"},
		{"text/", "application/octet-stream"},
		{"/plain", "application/octet-stream"},
		{"a/b/c", "application/octet-stream"},
		{"text/html\r\nX-Injected: 1", "application/octet-stream"},
		{"text/html\nSet-Cookie: a=b", "application/octet-stream"},
		{"text/plain; a=1; a=2", "application/octet-stream"},
		{"text/plain;;", "application/octet-stream"},
		{"text/plain; charset", "application/octet-stream"},
		{`text/plain; charset="unterminated`, "application/octet-stream"},
		{strings.Repeat("x", 5000), "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			assert.Equal(t, tt.want, CleanContentType(tt.in))
		})
	}
	// Whatever comes in, what goes out is one header-safe line.
	for _, in := range []string{
		`text/plain; name="a\"b"`, "text/plain; name=\"\x01\"", `text/plain; charset="ü"`,
		"text/plain; title*=UTF-8''%E2%82%AC", "text/plain; x=\"\r\n\"",
	} {
		got := CleanContentType(in)
		assert.NotEmpty(t, got, "%q", in)
		assert.Equal(t, -1, strings.IndexFunc(got, unicode.IsControl), "%q gave %q", in, got)
		for _, r := range got {
			assert.Less(t, r, rune(utf8.RuneSelf), "%q gave non-ASCII %q", in, got)
		}
	}
}
